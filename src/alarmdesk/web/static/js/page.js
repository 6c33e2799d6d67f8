// Pages without a module of their own (sign-in, errors) still get the shared behaviour.
import { init } from "./lib.js";

init();

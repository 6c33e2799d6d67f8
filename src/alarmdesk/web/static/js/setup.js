// The set-up page: the YAML text sent to the API to plan or apply; the changes listed by
// kind and id (never a key), an error with its line and rule.
import { csrf, h, init, toast } from "./lib.js";

init();
const text = document.getElementById("setup-text");
const error = document.getElementById("setup-error");
const list = document.getElementById("setup-plan-list");

function show(plan, verb) {
  const lines = [
    ...plan.added.map((c) => `+ ${c.kind}: ${c.id}`),
    ...plan.changed.map((c) => `~ ${c.kind}: ${c.id} (${c.fields.join(", ")})`),
    ...plan.removed.map((c) => `- ${c.kind}: ${c.id}`),
  ];
  list.replaceChildren(
    ...(lines.length ? lines.map((l) => h("li", { class: "mono" }, l)) : [h("li", {}, `No changes: the stored set-up already matches (${verb}).`)]),
  );
}

async function send(path, verb) {
  error.hidden = true;
  const r = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/yaml", Accept: "application/json", "X-CSRF-Token": csrf },
    body: text.value,
  }).catch(() => null);
  const answer = r ? await r.json().catch(() => null) : null;
  if (!r || !r.ok) {
    error.textContent = answer?.error ? `${answer.error.message} (${answer.error.code})` : "The server could not be reached.";
    error.hidden = false;
    return;
  }
  show(answer, verb);
  if (verb === "apply") toast("Applied: new incidents follow the new set-up.");
}

document.getElementById("setup-plan").addEventListener("click", () => send("/api/v1/setup/plan", "plan"));
document.getElementById("setup-apply").addEventListener("click", () => send("/api/v1/setup/apply", "apply"));

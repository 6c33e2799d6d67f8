// The rights officer's page: approving a custom type through the API, then showing the list
// as the server has it.
import { csrf, init, toast } from "./lib.js";

init();

document.addEventListener("click", async (e) => {
  const b = e.target.closest("button[data-approve]");
  if (!b) return;
  b.disabled = true;
  const code = b.dataset.approve;
  const r = await fetch(`/api/v1/incident-types/${encodeURIComponent(code)}/approve`, {
    method: "POST",
    headers: { Accept: "application/json", "X-CSRF-Token": csrf },
  }).catch(() => null);
  const data = r ? await r.json().catch(() => null) : null;
  if (r && r.ok) {
    toast(`${code}: ${data.status === "active" ? "approved, in force now" : "approval recorded"}`);
    setTimeout(() => location.reload(), 800);
  } else {
    toast(data?.error?.message || "The approval could not be recorded.", "error", 9000);
    b.disabled = false;
  }
});

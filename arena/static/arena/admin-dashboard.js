// Dashboard: fill in worker and queue health from its JSON (the check may
// take a second; the rest of the page does not wait for it).
(function () {
  "use strict";
  const box = document.getElementById("health");
  if (!box) return;
  const set = (id, text, ok) => {
    const el = document.getElementById(id);
    el.textContent = text;
    el.className = ok === undefined ? "" : ok ? "ok" : "bad";
  };
  fetch(box.dataset.url, { headers: { Accept: "application/json" } })
    .then((r) => (r.ok ? r.json() : Promise.reject(new Error("HTTP " + r.status))))
    .then((h) => {
      set("health-broker", h.broker === "ok" ? "ok (" + h.transport + ")" : "unreachable", h.broker === "ok");
      set("health-queued", h.queued === null ? "unknown" : String(h.queued));
      if (h.workers === null) set("health-workers", "unknown", false);
      else set("health-workers", h.workers.length ? h.workers.length + " (" + h.workers.join(", ") + ")" : "none", h.workers.length > 0);
      set("health-error", h.error || "");
      box.dataset.state = h.broker;
    })
    .catch((e) => set("health-broker", "check failed: " + e.message, false));
})();

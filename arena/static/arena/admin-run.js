// Recompute run page: poll the run's status JSON until it is done or failed.
(function () {
  "use strict";
  const box = document.getElementById("run-progress");
  if (!box) return;
  const status = document.getElementById("run-status");
  const detail = document.getElementById("run-detail");
  const bar = document.getElementById("run-bar");
  const result = document.getElementById("run-result");

  function show(run) {
    status.textContent = run.status;
    box.dataset.status = run.status;
    if (run.status === "queued") {
      detail.textContent = run.error ? "(" + run.error + ")" : "(waiting for a worker)";
      bar.style.width = "2%";
    } else if (run.status === "running") {
      const expected = run.expected_seconds;
      const share = expected ? Math.min(95, (100 * run.seconds) / expected) : 50;
      detail.textContent = "for " + run.seconds.toFixed(1) + " s" +
        (expected ? " (the last recompute took " + expected.toFixed(1) + " s)" : "");
      bar.style.width = share.toFixed(0) + "%";
    } else {
      bar.style.width = "100%";
      detail.textContent = run.seconds !== null ? "in " + run.seconds.toFixed(2) + " s" : "";
    }
    result.textContent = "";
    if (run.status === "done" && run.snapshot) {
      const a = document.createElement("a");
      a.href = box.dataset.snapshotUrl + run.snapshot.id + "/change/";
      a.textContent = "snapshot " + run.snapshot.id;
      a.id = "run-snapshot";
      result.append(run.snapshot.new ? "Published " : "Nothing changed since ", a,
        " · " + run.snapshot.vote_count + " votes · computed in " + run.snapshot.duration.toFixed(2) + " s");
    } else if (run.status === "failed") {
      result.textContent = "Error: " + run.error;
    }
  }

  async function poll() {
    try {
      const response = await fetch(box.dataset.url, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const run = await response.json();
        show(run);
        if (run.status === "done" || run.status === "failed") {
          // The fields below were rendered before the run finished: show them as they are now.
          if (box.dataset.initial === "queued" || box.dataset.initial === "running") window.location.reload();
          return;
        }
      }
    } catch (e) {
      detail.textContent = "(cannot reach the server; retrying)";
    }
    setTimeout(poll, 1000);
  }
  poll();
})();

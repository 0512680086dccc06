(function () {
  "use strict";
  var battle = document.getElementById("battle");
  if (!battle) return;
  var id = battle.dataset.battle;
  var buttons = document.querySelectorAll("#vote-buttons button");
  var status = document.getElementById("status");
  var next = document.getElementById("next");

  function csrf() {
    var m = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }
  function enable(on) {
    buttons.forEach(function (b) { b.disabled = !on; });
  }
  function fail(message) {
    status.textContent = message;
    status.className = "status error";
    enable(true);
  }
  // Every turn shows the side's name and outcome, not just the first.
  function reveal(side, name, outcome) {
    battle.querySelectorAll('.reveal[data-side="' + side + '"]').forEach(function (el) {
      el.textContent = "Model " + side.toUpperCase() + ": " + name;
      el.hidden = false;
    });
    if (outcome) {
      battle.querySelectorAll('.side[data-side="' + side + '"]').forEach(function (el) { el.classList.add(outcome); });
    }
  }
  function named(side, name) {
    var span = document.createElement("span");
    span.className = "named";
    span.textContent = "Model " + side + ": " + name;
    return span;
  }
  var outcomes = {
    a: { a: "winner", b: "loser" }, b: { a: "loser", b: "winner" },
    tie: { a: "tied", b: "tied" }, both_bad: { a: "loser", b: "loser" }
  };

  buttons.forEach(function (btn) {
    btn.addEventListener("click", function () {
      enable(false);
      status.className = "status";
      status.textContent = "Saving your vote…";
      fetch("/api/v1/battles/" + id + "/vote/", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() },
        body: JSON.stringify({ winner: btn.dataset.winner })
      }).then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (body) {
          return { ok: r.ok, status: r.status, body: body };
        });
      }).then(function (res) {
        if (!res.ok) {
          fail("Vote not saved: " + (res.body.detail || "the server answered " + res.status));
          if (res.status === 409 || res.status === 404) { enable(false); next.hidden = false; }
          return;
        }
        var o = outcomes[res.body.winner] || {};
        reveal("a", res.body.model_a, o.a);
        reveal("b", res.body.model_b, o.b);
        btn.classList.add("chosen");
        // The bar stays in view on a phone, so it carries the result too.
        status.textContent = "";
        status.append("Thanks! Your vote (" + btn.querySelector(".text").textContent + ") is stored. ",
          named("A", res.body.model_a), " · ", named("B", res.body.model_b));
        document.getElementById("votebar").classList.add("done");
        next.hidden = false;
        next.focus({ preventScroll: true });
      }).catch(function () {
        fail("Network error: your vote was not saved. Try again.");
      });
    });
  });
  next.addEventListener("click", function () { location.reload(); });

  // Skip: the battle ends unvoted (nothing counted, nothing revealed) and
  // the reload opens the next one.
  var skip = document.getElementById("skip");
  // Once the vote is stored (or refused for good) "Next battle" shows; skip goes.
  new MutationObserver(function () { if (!next.hidden) skip.hidden = true; }).observe(next, { attributes: true });
  skip.addEventListener("click", function () {
    enable(false);
    skip.disabled = true;
    status.className = "status";
    status.textContent = "Skipping…";
    fetch("/api/v1/battles/" + id + "/skip/", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() },
      body: "{}"
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (r.ok || r.status === 409 || r.status === 404) { location.reload(); return; }
        skip.disabled = false;
        fail("Not skipped: " + (body.detail || "the server answered " + r.status));
      });
    }).catch(function () {
      skip.disabled = false;
      fail("Network error: the battle was not skipped. Try again.");
    });
  });
})();

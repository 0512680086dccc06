(function () {
  "use strict";
  var battle = document.getElementById("battle");
  if (!battle) return;
  var id = battle.dataset.battle;
  function csrf() {
    var m = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }
  var buttons = document.querySelectorAll("#vote-buttons button");
  var status = document.getElementById("status");
  buttons.forEach(function (btn) {
    btn.addEventListener("click", function () {
      buttons.forEach(function (b) { b.disabled = true; });
      status.textContent = "Saving your vote…";
      fetch("/api/v1/battles/" + id + "/vote/", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() },
        body: JSON.stringify({ winner: btn.dataset.winner })
      }).then(function (r) {
        return r.json().then(function (body) { return { ok: r.ok, body: body }; });
      }).then(function (res) {
        if (!res.ok) {
          status.textContent = "Vote not saved: " + (res.body.detail || "error");
          buttons.forEach(function (b) { b.disabled = false; });
          return;
        }
        var a = document.getElementById("reveal-a"), b = document.getElementById("reveal-b");
        a.textContent = "Model A: " + res.body.model_a; a.hidden = false;
        b.textContent = "Model B: " + res.body.model_b; b.hidden = false;
        status.textContent = "Thanks! Your vote is stored.";
        document.getElementById("next").hidden = false;
      }).catch(function () {
        status.textContent = "Network error; your vote was not saved. Try again.";
        buttons.forEach(function (b) { b.disabled = false; });
      });
    });
  });
})();

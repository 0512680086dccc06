// Live battles: both answers stream side by side (server-sent events read
// from a POST, so the request carries the CSRF token), follow-up turns,
// retry after a failure, then the vote and the reveal.
(function () {
  "use strict";
  var root = document.getElementById("live");
  if (!root) return;
  var id = root.dataset.battle;
  var status = root.dataset.status;
  var turnsBox = document.getElementById("turns");
  var composer = document.getElementById("composer");
  var input = document.getElementById("prompt-input");
  var buttons = document.querySelectorAll("#vote-buttons button");
  var statusLine = document.getElementById("status");
  var recover = document.getElementById("recover");
  var next = document.getElementById("next");

  function csrf() {
    var m = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }
  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() },
      body: JSON.stringify(body || {})
    });
  }
  function say(message, isError) {
    statusLine.textContent = message;
    statusLine.className = isError ? "status error" : "status";
  }
  function voting(on) { buttons.forEach(function (b) { b.disabled = !on; }); }
  function turnCount() { return turnsBox.querySelectorAll(".turn").length; }
  function lastAnswer(side) {
    var turns = turnsBox.querySelectorAll(".turn");
    return turns[turns.length - 1].querySelector('.answer[data-side="' + side + '"]');
  }
  function addTurn(prompt) {
    var n = turnCount() + 1;
    var section = document.createElement("section");
    section.className = "turn";
    section.setAttribute("aria-label", "Turn " + n);
    var box = document.createElement("div");
    box.className = "prompt";
    var label = document.createElement("h3");
    label.className = "label";
    label.textContent = "You";
    var text = document.createElement("div");
    text.className = "text";
    text.textContent = prompt;
    box.append(label, text);
    var sides = document.createElement("div");
    sides.className = "sides";
    ["a", "b"].forEach(function (side) {
      var article = document.createElement("article");
      article.className = "side";
      article.dataset.side = side;
      article.setAttribute("aria-label", "Model " + side.toUpperCase() + ", turn " + n);
      var copy = document.createElement("button");
      copy.type = "button";
      copy.className = "copy";
      copy.title = "Copy this answer's markdown";
      var hidden = document.createElement("span");
      hidden.className = "visually-hidden";
      hidden.textContent = " answer " + side.toUpperCase() + ", turn " + n;
      copy.append("Copy", hidden);
      var head = document.createElement("div");
      head.className = "side-head";
      var name = document.createElement("h4");
      name.className = "label";
      name.textContent = "Model " + side.toUpperCase();
      head.append(name, copy);
      var answer = document.createElement("div");
      answer.className = "answer stream";
      answer.dataset.side = side;
      article.append(head, answer);
      sides.append(article);
    });
    section.append(box, sides);
    turnsBox.append(section);
  }
  var streamed = { a: "", b: "" };
  function resetLastTurn() {
    ["a", "b"].forEach(function (side) {
      var answer = lastAnswer(side);
      answer.textContent = "";
      answer.classList.add("stream");  // plain text with its line breaks until side_done
      streamed[side] = "";
      var article = answer.parentNode;
      delete article.querySelector(".copy").dataset.copy;
      article.classList.remove("failed");
      var err = article.querySelector(".error");
      if (err) err.remove();
    });
  }
  function sideFailed(side, message) {
    var article = lastAnswer(side).parentNode;
    article.classList.add("failed");
    var p = document.createElement("p");
    p.className = "error";
    p.textContent = message;
    article.append(p);
  }

  function readEvents(response, onEvent) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done) return;
        buffer += decoder.decode(chunk.value, { stream: true });
        var parts = buffer.split("\n\n");
        buffer = parts.pop();
        parts.forEach(function (block) {
          var name = "message", data = "";
          block.split("\n").forEach(function (line) {
            if (line.indexOf("event: ") === 0) name = line.slice(7);
            else if (line.indexOf("data: ") === 0) data += line.slice(6);
          });
          if (data) onEvent(name, JSON.parse(data));
        });
        return pump();
      });
    }
    return pump();
  }

  function stream() {
    status = "pending";
    root.dataset.status = status;
    composer.hidden = true;
    recover.hidden = true;
    voting(false);
    say("Both models are answering…");
    resetLastTurn();
    var ended = false;
    return post("/api/v1/battles/" + id + "/stream/").then(function (r) {
      if (!r.ok) {
        return r.json().catch(function () { return {}; }).then(function (body) {
          throw new Error(body.detail || "the server answered " + r.status);
        });
      }
      return readEvents(r, function (name, data) {
        if (name === "start" && data.prompt_html !== undefined) {
          var text = turnsBox.querySelector(".turn:last-child .prompt .text");
          text.innerHTML = data.prompt_html;  // rendered and escaped by the server (arena/rendering.py)
          text.classList.add("md");
        } else if (name === "delta") {
          streamed[data.side] += data.text;
          lastAnswer(data.side).textContent += data.text;
        } else if (name === "side_done") {
          var answer = lastAnswer(data.side);
          if (data.html !== undefined) {
            answer.innerHTML = data.html;  // rendered and escaped by the server (arena/rendering.py)
            answer.classList.remove("stream");
          }
          answer.closest(".side").querySelector(".copy").dataset.copy = streamed[data.side];
        }
        else if (name === "side_error") sideFailed(data.side, data.message);
        else if (name === "end") { ended = true; finish(data); }
      });
    }).then(function () {
      if (!ended) throw new Error("the connection dropped before both answers finished");
    }).catch(function (err) {
      status = "failed";
      root.dataset.status = status;
      say("The answers could not be completed: " + err.message + ".", true);
      recover.hidden = false;
    });
  }

  function finish(end) {
    status = end.status;
    root.dataset.status = status;
    if (status === "ready") {
      voting(true);
      say(end.turns_left > 0 ? "Both answers are in. Vote, or ask a follow-up." : "Both answers are in. Vote now.");
      composer.hidden = !(end.turns_left > 0);
      if (end.turns_left > 0) {
        composer.querySelector("label").textContent = "Ask both models a follow-up";
        document.getElementById("send").textContent = "Ask both";
      }
    } else {
      say("This battle can't be voted on because an answer failed. Retry the turn or start a new battle.", true);
      recover.hidden = false;
    }
  }

  composer.addEventListener("submit", function (e) {
    e.preventDefault();
    var prompt = input.value.trim();
    if (!prompt) return;
    composer.hidden = true;
    var opening = id ? post("/api/v1/battles/" + id + "/turns/", { prompt: prompt })
                     : post("/api/v1/battles/", { prompt: prompt });
    opening.then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (!r.ok) throw new Error(body.detail || "the server answered " + r.status);
        return body;
      });
    }).then(function (body) {
      id = body.id;
      root.dataset.battle = id;
      input.value = "";
      addTurn(prompt);
      return stream();
    }).catch(function (err) {
      composer.hidden = false;
      say("Not sent: " + err.message + ".", true);
    });
  });

  var outcomes = {
    a: { a: "winner", b: "loser" }, b: { a: "loser", b: "winner" },
    tie: { a: "tied", b: "tied" }, both_bad: { a: "loser", b: "loser" }
  };
  buttons.forEach(function (btn) {
    btn.addEventListener("click", function () {
      voting(false);
      composer.hidden = true;
      say("Saving your vote…");
      post("/api/v1/battles/" + id + "/vote/", { winner: btn.dataset.winner }).then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (body) {
          return { ok: r.ok, status: r.status, body: body };
        });
      }).then(function (res) {
        if (!res.ok) {
          say("Vote not saved: " + (res.body.detail || "the server answered " + res.status), true);
          if (res.status === 409 || res.status === 404 || res.status === 410) next.hidden = false;
          else voting(true);
          return;
        }
        var o = outcomes[res.body.winner] || {};
        ["a", "b"].forEach(function (side) {
          var el = document.getElementById("reveal-" + side);
          el.textContent = "Model " + side.toUpperCase() + ": " + res.body["model_" + side];
          el.hidden = false;
          if (o[side]) document.getElementById("side-" + side).classList.add(o[side]);
        });
        btn.classList.add("chosen");
        say("Thanks! Your vote is stored. Model A: " + res.body.model_a + " · Model B: " + res.body.model_b);
        document.getElementById("votebar").classList.add("done");
        next.hidden = false;
        next.focus({ preventScroll: true });
      }).catch(function () {
        say("Network error: your vote was not saved. Try again.", true);
        voting(true);
      });
    });
  });

  // Skip a ready battle: it ends unvoted (nothing counted, nothing revealed).
  var skip = document.getElementById("skip");
  new MutationObserver(function () { skip.hidden = root.dataset.status !== "ready" || !next.hidden; })
    .observe(root, { attributes: true, attributeFilter: ["data-status"] });
  new MutationObserver(function () { if (!next.hidden) skip.hidden = true; }).observe(next, { attributes: true });
  skip.addEventListener("click", function () {
    voting(false);
    skip.disabled = true;
    say("Skipping…");
    post("/api/v1/battles/" + id + "/skip/").then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (r.ok || r.status === 409 || r.status === 404) { fresh(); return; }
        skip.disabled = false;
        voting(true);
        say("Not skipped: " + (body.detail || "the server answered " + r.status), true);
      });
    }).catch(function () {
      skip.disabled = false;
      voting(true);
      say("Network error: the battle was not skipped. Try again.", true);
    });
  });

  document.getElementById("retry").addEventListener("click", function () { stream(); });
  function fresh() { location.assign("/arena/"); }
  document.getElementById("new-battle").addEventListener("click", fresh);
  next.addEventListener("click", fresh);

  if (status === "pending") stream();
  else if (status === "ready") finish({ status: "ready", turns_left: Number(root.dataset.maxTurns) - turnCount() });
  else input.focus();
})();

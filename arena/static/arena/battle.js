// What both battle pages (arena.html, live.html) share: a copy button per
// answer and keyboard shortcuts for the four votes.
(function () {
  "use strict";

  // --- copy: puts the answer's markdown source on the clipboard ---------------
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    // Plain http on a LAN address has no async clipboard; the old way still works.
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.append(area);
      area.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      area.remove();
      if (ok) resolve(); else reject(new Error("copy refused"));
    });
  }
  function flash(button, message) {
    var label = button.firstChild;
    var before = button.dataset.label || label.textContent;
    button.dataset.label = before;
    label.textContent = message;
    clearTimeout(button._copyTimer);
    button._copyTimer = setTimeout(function () { label.textContent = before; }, 1500);
  }
  document.addEventListener("click", function (e) {
    var button = e.target.closest && e.target.closest("button.copy");
    if (!button) return;
    var side = button.closest(".side");
    var answer = side && side.querySelector(".answer");
    // data-copy holds the markdown source; a streamed answer's text is its source.
    var text = button.dataset.copy !== undefined ? button.dataset.copy : (answer ? answer.textContent : "");
    copyText(text).then(function () { flash(button, "Copied"); },
                        function () { flash(button, "Copy failed"); });
  });

  // --- vote shortcuts --------------------------------------------------------
  // Letters without modifiers (Ctrl+A, Ctrl+B, Cmd+T stay the browser's), never
  // while the voter types: in a text field the letter is just a letter.
  var keys = { a: "a", b: "b", t: "tie", x: "both_bad" };
  function typing(el) {
    if (!el || el === document.body) return false;
    if (el.isContentEditable) return true;
    var tag = el.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT") return true;
    if (tag === "INPUT") {
      return ["button", "checkbox", "radio", "submit", "reset", "range", "color", "file", "image"].indexOf(el.type) < 0;
    }
    return false;
  }
  document.addEventListener("keydown", function (e) {
    if (e.defaultPrevented || e.repeat || e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
    if (typing(e.target) || typing(document.activeElement)) return;
    var winner = keys[(e.key || "").toLowerCase()];
    if (!winner) return;
    var bar = document.getElementById("votebar");
    var button = document.querySelector('#vote-buttons button[data-winner="' + winner + '"]');
    if (!button || button.disabled || button.hidden || (bar && bar.classList.contains("done"))) return;
    e.preventDefault();
    button.click();
  });
})();

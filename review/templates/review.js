// Keyboard shortcuts of the review app (plain script, served from this app: the CSP allows only 'self').
// Queue: j/k move between rows, Enter opens, n/p pages, / search, t team.
// Applicant: 1-4 choose the outcome, s save and next, c claim, j/k next/previous case, u back to the queue.
(function () {
  "use strict";

  function typing(target) {
    var tag = target && target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }

  function follow(id) {
    var link = document.getElementById(id);
    if (link && link.href) { window.location.assign(link.href); return true; }
    return false;
  }

  var rows = [];
  var current = -1;

  function mark(i) {
    if (!rows.length) { return; }
    current = Math.max(0, Math.min(rows.length - 1, i));
    rows.forEach(function (r, k) { r.classList.toggle("current", k === current); });
    rows[current].scrollIntoView({ block: "nearest" });
  }

  function openCurrent() {
    var link = current >= 0 && rows[current].querySelector("a");
    if (link) { window.location.assign(link.href); return true; }
    return false;
  }

  function chooseOutcome(n) {
    var radio = document.querySelector('input[name="outcome"][data-key="' + n + '"]');
    if (radio) { radio.checked = true; radio.focus(); return true; }
    return false;
  }

  function submitWith(formId, buttonId) {
    var form = document.getElementById(formId);
    var button = document.getElementById(buttonId);
    if (!form || !button) { return false; }
    if (form.requestSubmit) { form.requestSubmit(button); } else { button.click(); }
    return true;
  }

  function onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (typing(event.target)) {
      if (event.key === "Escape") { event.target.blur(); }
      return;
    }
    var queue = rows.length > 0;
    var handled = false;
    switch (event.key) {
      case "/": {
        var find = document.getElementById("find");
        if (find) { find.focus(); handled = true; }
        break;
      }
      case "j": handled = queue ? (mark(current + 1), true) : follow("next-case"); break;
      case "k": handled = queue ? (mark(current - 1), true) : follow("prev-case"); break;
      case "Enter": // a focused link or button keeps its own Enter
        handled = queue && !/^(A|BUTTON)$/.test(event.target.tagName) && openCurrent();
        break;
      case "n": handled = follow("next-page"); break;
      case "p": handled = follow("prev-page"); break;
      case "t": handled = follow("team-link"); break;
      case "u": handled = follow("back"); break;
      case "s": handled = submitWith("review-form", "save-next"); break;
      case "c": handled = submitWith("claim-form", "claim-button"); break;
      default:
        if (/^[1-9]$/.test(event.key)) { handled = chooseOutcome(event.key); }
    }
    if (handled) { event.preventDefault(); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    rows = Array.prototype.slice.call(document.querySelectorAll("#queue tbody tr[data-id]"));
    document.addEventListener("keydown", onKey);
  });
})();

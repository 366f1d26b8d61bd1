// Keyboard shortcuts for the moderators' console (served from /console/static/, allowed by script-src 'self').
// Decisions are never taken by one key: d, a and e focus the button and Enter presses it.
(function () {
  "use strict";
  var help = document.getElementById("shortcuts");
  var hint = document.getElementById("key-hint");
  var opener = document.getElementById("show-shortcuts");
  if (opener && help) {
    opener.addEventListener("click", function () { help.showModal(); });
  }

  function say(text) { if (hint) { hint.textContent = text; } }
  function typing(target) {
    return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }
  function rows() { return Array.prototype.slice.call(document.querySelectorAll("#queue tbody tr")); }
  function currentRow() {
    var active = document.activeElement;
    return active && active.closest ? active.closest("#queue tbody tr") : null;
  }
  function moveRow(step) {
    var all = rows();
    if (!all.length) { return; }
    var index = all.indexOf(currentRow());
    var next = all[Math.max(0, Math.min(all.length - 1, index < 0 ? 0 : index + step))];
    next.querySelector("a.item-link").focus();
  }
  function follow(id) {
    var link = document.getElementById(id);
    if (link) { link.click(); } else { say("No " + (id === "next-item" ? "next" : "previous") + " item in the queue."); }
  }
  function focusButton(selector, text) {
    var button = document.querySelector(selector);
    if (button) { button.focus(); say(text); } else { say("That action is not available for this item."); }
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target) || (help && help.open)) { return; }
    var onQueue = !!document.getElementById("queue");
    var key = event.key;
    var handled = true;
    if (key === "?") { if (help) { help.showModal(); } }
    else if (key === "j") { if (onQueue) { moveRow(1); } else { follow("next-item"); } }
    else if (key === "k") { if (onQueue) { moveRow(-1); } else { follow("prev-item"); } }
    else if (key === "x" && onQueue) {
      var row = currentRow();
      var box = row && row.querySelector("input[type=checkbox]");
      if (box && !box.disabled) { box.checked = !box.checked; say((box.checked ? "Selected " : "Unselected ") + box.value); }
    }
    else if (key === "b" && onQueue) { focusButton("#bulk-keep", "Press Enter to keep the selected items (you confirm next)."); }
    else if (key === "/") { var search = document.getElementById("f-search"); if (search) { search.focus(); } else { handled = false; } }
    else if (key === "u") { window.location.href = document.querySelector("a.brand").getAttribute("href"); }
    else if (key === "c") { focusButton("button[value=claim]", "Press Enter to claim this item."); }
    else if (key === "d") { focusButton("button[value=delist]", "Press Enter to delist."); }
    else if (key === "a") { focusButton("button[value=keep]", "Press Enter to keep it in search."); }
    else if (key === "e") { focusButton("button[value=escalate]", "Press Enter to escalate."); }
    else if (key === "n") { var note = document.getElementById("note"); if (note) { note.focus(); } else { handled = false; } }
    else { handled = false; }
    if (handled) { event.preventDefault(); }
  });
})();

// The staff menu's groups are <details> drop-downs and work without this file. With it, opening
// one group closes the others, and Escape or a click elsewhere closes an open one.
(function () {
  "use strict";
  function groups() { return document.querySelectorAll("header.top details.group"); }
  function closeAll(except) {
    groups().forEach(function (g) { if (g !== except) { g.open = false; } });
  }
  document.addEventListener("toggle", function (event) {
    var target = event.target;
    if (target.matches && target.matches("header.top details.group") && target.open) {
      closeAll(target);
    }
  }, true);
  document.addEventListener("click", function (event) {
    if (!event.target.closest || !event.target.closest("header.top details.group")) { closeAll(null); }
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    var open = document.querySelector("header.top details.group[open]");
    if (open) { open.open = false; open.querySelector("summary").focus(); }
  });
})();

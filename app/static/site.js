// Progressive enhancement for every page; each page works without this file.
(function () {
  "use strict";

  // The staff menu's groups are <details> drop-downs: opening one closes the others, and
  // Escape or a click elsewhere closes an open one.
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

  // A wide table (or a document) scrolls inside its own box on a phone, not the page; a
  // keyboard user can scroll it only if it can take focus (WCAG 2.1.1), so it gets a tab stop
  // while, and only while, it is wider than its box.
  function markScrollable() {
    document.querySelectorAll("main table, main pre").forEach(function (el) {
      var scrolls = el.scrollWidth > el.clientWidth + 1;
      if (scrolls && !el.hasAttribute("tabindex")) {
        el.tabIndex = 0;
        el.setAttribute("data-scroll-stop", "");
      } else if (!scrolls && el.hasAttribute("data-scroll-stop")) {
        el.removeAttribute("tabindex");
        el.removeAttribute("data-scroll-stop");
      }
    });
  }
  var pending = null;
  window.addEventListener("resize", function () {
    clearTimeout(pending);
    pending = setTimeout(markScrollable, 150);
  });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", markScrollable);
  } else {
    markScrollable();
  }
})();

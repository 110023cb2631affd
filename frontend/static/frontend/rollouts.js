/* Rollouts: size the percentage bars from their data-width (no inline styles, CSP-friendly). */
(function () {
  "use strict";
  function sizeBars(root) {
    root.querySelectorAll(".progress > span[data-width]").forEach(function (bar) {
      const value = Math.max(0, Math.min(100, parseFloat(bar.dataset.width) || 0));
      bar.style.width = value + "%";
    });
  }
  document.addEventListener("DOMContentLoaded", function () { sizeBars(document); });
  document.addEventListener("htmx:afterSettle", function (event) { sizeBars(event.target); });
})();

/* The page that shows a new secret (an API key or an invitation link) is a POST response:
   point its history entry at the list, so reloading shows the list and never the secret. */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    const marker = document.querySelector("[data-replace-url]");
    if (marker && window.history && history.replaceState) {
      history.replaceState(null, "", marker.dataset.replaceUrl);
    }
  });
})();

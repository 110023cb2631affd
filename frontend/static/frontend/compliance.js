/* A swap target marked data-swap-errors shows the server's 4xx answer (the form with its
   field errors, status 400) in place, as it shows without JS; htmx 2 drops 4xx responses. */
(function () {
  "use strict";
  document.addEventListener("htmx:beforeSwap", function (event) {
    const status = event.detail.xhr.status;
    if (status >= 400 && status < 500 && event.target.closest("[data-swap-errors]")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
})();

/* Forms marked data-swap-errors show the server's 400 answer (the form with its field errors)
   in place, as without JS; htmx 2 would otherwise drop a 4xx response. */
(function () {
  "use strict";
  document.addEventListener("htmx:beforeSwap", function (event) {
    const status = event.detail.xhr.status;
    if (status >= 400 && status < 500 && event.detail.elt.closest("[data-swap-errors]")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
})();

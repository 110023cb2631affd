/* Usage page: the filters answer 400 with the messages next to the fields; htmx does not swap
   error responses by default, so let this form's 400 replace the report like a 200 does. */
(function () {
  "use strict";
  document.addEventListener("htmx:beforeSwap", function (event) {
    const source = event.detail.requestConfig && event.detail.requestConfig.elt;
    if (event.detail.xhr.status === 400 && source && source.closest("#usage-filters")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
})();

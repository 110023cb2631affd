/* Timbre console behaviour: small, declarative hooks on data- attributes, re-applied after each
   htmx swap. Page-specific scripts (the recorder) live in their own files. */
(function () {
  "use strict";

  const CHART_SRC = document.currentScript.src.replace(/console\.js.*$/, "vendor/chart-4.6.1.umd.min.js");
  let chartLib = null;

  function loadChartLib() {
    if (window.Chart) return Promise.resolve(window.Chart);
    if (!chartLib) {
      chartLib = new Promise(function (resolve, reject) {
        const script = document.createElement("script");
        script.src = CHART_SRC;
        script.onload = function () { resolve(window.Chart); };
        script.onerror = reject;
        document.head.appendChild(script);
      });
    }
    return chartLib;
  }

  // <canvas data-chart="spec-id">: the spec is a json_script block rendered by the server.
  function drawCharts(root) {
    const canvases = root.querySelectorAll("canvas[data-chart]");
    if (!canvases.length) return;
    loadChartLib().then(function (Chart) {
      Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
      Chart.defaults.color = "#576074";
      Chart.defaults.maintainAspectRatio = false;
      Chart.defaults.animation = false;
      canvases.forEach(function (canvas) {
        const specNode = document.getElementById(canvas.dataset.chart);
        if (!specNode) return;
        const existing = Chart.getChart(canvas);
        if (existing) existing.destroy();
        new Chart(canvas, JSON.parse(specNode.textContent));
      });
    });
  }

  // <button data-copy="#element-id">: copy that element's text; announce it politely.
  function onCopy(event) {
    const button = event.target.closest("[data-copy]");
    if (!button) return;
    const source = document.querySelector(button.dataset.copy);
    if (!source) return;
    const text = source.value !== undefined ? source.value : source.textContent.trim();
    const done = function () {
      const label = button.dataset.copiedLabel || "Copied";
      const original = button.dataset.originalLabel || button.textContent;
      button.dataset.originalLabel = original;
      button.textContent = label;
      button.setAttribute("aria-live", "polite");
      setTimeout(function () { button.textContent = original; }, 2000);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, done);
    } else {
      const area = document.createElement("textarea");
      area.value = text;
      document.body.appendChild(area);
      area.select();
      document.execCommand("copy");
      area.remove();
      done();
    }
  }

  // <form data-confirm="Revoke this key?">: a native <dialog> asks before submitting.
  function onSubmit(event) {
    const form = event.target;
    if (!form.dataset || !form.dataset.confirm || form.dataset.confirmed) return;
    // Before htmx or the browser see it: nothing is sent until the dialog says so.
    event.preventDefault();
    event.stopPropagation();
    const dialog = document.getElementById("confirm-dialog") || makeDialog();
    dialog.querySelector("[data-message]").textContent = form.dataset.confirm;
    const ok = dialog.querySelector("[data-ok]");
    ok.textContent = form.dataset.confirmLabel || "Confirm";
    dialog.returnValue = "";
    dialog.showModal();
    dialog.addEventListener("close", function handler() {
      dialog.removeEventListener("close", handler);
      if (dialog.returnValue === "ok") {
        form.dataset.confirmed = "1";
        if (form.requestSubmit) form.requestSubmit(); else form.submit();
        delete form.dataset.confirmed;
      }
    });
  }

  function makeDialog() {
    const dialog = document.createElement("dialog");
    dialog.id = "confirm-dialog";
    dialog.setAttribute("aria-labelledby", "confirm-dialog-message");
    dialog.innerHTML =
      '<form method="dialog"><p id="confirm-dialog-message" data-message></p>' +
      '<div class="form-actions"><button value="ok" class="danger" data-ok>Confirm</button>' +
      '<button value="cancel" class="ghost">Cancel</button></div></form>';
    document.body.appendChild(dialog);
    return dialog;
  }

  // <select data-autosubmit>: submit its form on change (the tenant switcher, filters).
  function onChange(event) {
    const control = event.target.closest("[data-autosubmit]");
    if (control && control.form && !control.form.hasAttribute("hx-get")) control.form.submit();
  }

  // <time data-countdown="ISO-8601">: "4 min 10 s left", then the data-expired text.
  function tickCountdowns() {
    document.querySelectorAll("[data-countdown]").forEach(function (node) {
      const left = Math.round((Date.parse(node.dataset.countdown) - Date.now()) / 1000);
      if (left <= 0) {
        node.textContent = node.dataset.expired || "expired";
        node.classList.add("expired");
        return;
      }
      const minutes = Math.floor(left / 60), seconds = left % 60;
      node.textContent = (minutes ? minutes + " min " : "") + seconds + " s left";
    });
  }

  // A form answered with 400 is the same form with its errors next to the fields: swap it in
  // like a 200 (htmx 2 drops 4xx answers by default), so htmx and no-JS behave alike.
  function onBeforeSwap(event) {
    const status = event.detail.xhr.status;
    if (status === 400 || status === 422) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  }

  function init(root) {
    drawCharts(root);
    tickCountdowns();
  }

  document.addEventListener("click", onCopy);
  document.addEventListener("submit", onSubmit, true);
  document.addEventListener("change", onChange);
  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:beforeSwap", onBeforeSwap);
  document.addEventListener("htmx:afterSettle", function (event) { init(event.target); });
  setInterval(tickCountdowns, 1000);
})();

// The consent recorder: MediaRecorder on the microphone, a live level meter (Web Audio
// AnalyserNode), a preview player, and the take placed in the form's file input, so a
// recording and an uploaded file go to the same endpoint. Without a microphone API the
// recorder stays hidden and the upload field alone remains.
(function () {
  "use strict";

  function format(seconds) {
    var s = Math.floor(seconds);
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }

  function pickType() {
    var types = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm", "audio/mp4"];
    for (var i = 0; i < types.length; i++) {
      if (window.MediaRecorder.isTypeSupported && MediaRecorder.isTypeSupported(types[i])) return types[i];
    }
    return "";
  }

  function setup(root) {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.MediaRecorder) return;
    var input = document.querySelector(root.dataset.target);
    var startBtn = root.querySelector("[data-record-start]");
    var stopBtn = root.querySelector("[data-record-stop]");
    var meter = root.querySelector("[data-record-level]");
    var status = root.querySelector("[data-record-status]");
    var clock = root.querySelector("[data-record-time]");
    var preview = root.querySelector("[data-record-preview]");
    var recorder = null, stream = null, context = null, timer = null, started = 0, chunks = [];
    root.hidden = false;

    function stopLevel() {
      if (timer) clearInterval(timer);
      timer = null;
      if (context) context.close();
      context = null;
      meter.value = 0;
    }

    function startLevel() {
      var AudioCtx = window.AudioContext || window.webkitAudioContext;
      if (!AudioCtx) return;
      context = new AudioCtx();
      var analyser = context.createAnalyser();
      analyser.fftSize = 2048;
      context.createMediaStreamSource(stream).connect(analyser);
      var buf = new Float32Array(analyser.fftSize);
      timer = setInterval(function () {
        analyser.getFloatTimeDomainData(buf);
        var sum = 0;
        for (var i = 0; i < buf.length; i++) sum += buf[i] * buf[i];
        var rms = Math.sqrt(sum / buf.length);
        // About -60 dBFS reads 0, 0 dBFS reads 1.
        var level = rms > 0 ? Math.max(0, Math.min(1, 1 + Math.log10(rms) / 3)) : 0;
        meter.value = level;
        meter.textContent = Math.round(level * 100) + " %";
        clock.textContent = format((Date.now() - started) / 1000);
      }, 100);
    }

    startBtn.addEventListener("click", function () {
      status.textContent = "Asking for the microphone…";
      navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false } }).then(function (s) {
        stream = s;
        chunks = [];
        var type = pickType();
        recorder = type ? new MediaRecorder(stream, { mimeType: type }) : new MediaRecorder(stream);
        recorder.addEventListener("dataavailable", function (e) { if (e.data && e.data.size) chunks.push(e.data); });
        recorder.addEventListener("stop", function () {
          stream.getTracks().forEach(function (t) { t.stop(); });
          stopLevel();
          var mime = (recorder.mimeType || "audio/webm").split(";")[0];
          var ext = mime.indexOf("ogg") >= 0 ? "ogg" : mime.indexOf("mp4") >= 0 ? "m4a" : "webm";
          var blob = new Blob(chunks, { type: mime });
          var file = new File([blob], "consent-recording." + ext, { type: mime });
          var transfer = new DataTransfer();
          transfer.items.add(file);
          input.files = transfer.files;
          preview.src = URL.createObjectURL(blob);
          root.classList.remove("recording");
          root.dataset.state = "recorded";
          status.textContent = "Recorded " + format((Date.now() - started) / 1000) + ". Listen to it, then submit it (or record again).";
          startBtn.disabled = false;
          startBtn.lastChild.textContent = " Record again";
          stopBtn.disabled = true;
        });
        recorder.start(250);
        started = Date.now();
        startLevel();
        root.classList.add("recording");
        root.dataset.state = "recording";
        status.textContent = "Recording… read the statement now.";
        startBtn.disabled = true;
        stopBtn.disabled = false;
        stopBtn.focus();
      }).catch(function (err) {
        status.textContent = "The microphone is not available (" + err.name + "). Upload a recording instead.";
      });
    });

    stopBtn.addEventListener("click", function () {
      if (recorder && recorder.state !== "inactive") recorder.stop();
    });
  }

  function init() {
    document.querySelectorAll("[data-recorder]").forEach(setup);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();

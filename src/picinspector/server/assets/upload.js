/* PicInspector web page: drop photos (or pick them), upload each to POST /v1/analyze?overlays=true,
 * and show the results with the report's own cards, summary and toolbar (report.js). A few uploads
 * run at once (the server's concurrency); progress counts photos done and failed. */
(function (global) {
  "use strict";

  var PI = global.PicInspector;
  var el = PI.el;

  function setup(app) {
    var host = document.getElementById("upload");
    if (!host) return;
    var limits = app.meta.limits || {};
    var parallel = Math.max(1, Math.min(4, limits.concurrency || 2));
    var input = el("input", {type: "file", id: "file-input", multiple: true, hidden: true,
                             accept: "image/*,.heic,.heif,.avif,.dng,.cr2,.cr3,.nef,.arw,.orf,.rw2,.raf"});
    var zone = el("div", {"class": "dropzone", id: "dropzone", tabindex: "0", role: "button"}, [
      el("strong", {text: "Drop photos here"}), " or click to choose them",
      el("div", {"class": "muted", text: "Photos up to " +
                 ((limits.max_upload_bytes || 0) / 1048576).toFixed(0) + " MiB each; they are analysed on this " +
                 "server and not kept."})]);
    var native = el("input", {type: "checkbox", id: "native-detail"});
    var bar = el("progress", {id: "upload-progress", max: 1, value: 0});
    var status = el("span", {id: "upload-status", "class": "muted", text: "no photos yet"});
    host.appendChild(zone);
    host.appendChild(input);
    host.appendChild(el("div", {"class": "upload-options"}, [el("label", null, [native,
      " native detail (decode large JPEGs at full size: slower)"])]));
    host.appendChild(el("div", {"class": "upload-status"}, [bar, status]));

    var queue = [], total = 0, done = 0, failed = 0, active = 0;

    function report() {
      bar.max = Math.max(1, total);
      bar.value = done;
      status.textContent = total ? done + " of " + total + " analysed" + (failed ? ", " + failed + " failed" : "") +
        (active ? " · " + active + " uploading" : "") : "no photos yet";
      document.body.setAttribute("data-pending", String(total - done));
    }

    function next() {
      while (active < parallel && queue.length) send(queue.shift());
      report();
    }

    function send(file) {
      active += 1;
      var form = new FormData();
      form.append("files", file, file.name);
      var url = "/v1/analyze?overlays=true" + (native.checked ? "&native_detail=true" : "");
      fetch(url, {method: "POST", body: form}).then(function (response) {
        return response.json().catch(function () {
          return {error: {kind: "bad_response", message: "HTTP " + response.status}};
        }).then(function (body) {
          if (body.results) return body.results;
          return [{path: file.name, error: body.error || {kind: "error", message: "HTTP " + response.status}}];
        });
      }, function (error) {
        return [{path: file.name, error: {kind: "network", message: String(error)}}];
      }).then(function (rows) {
        rows.forEach(function (row) { if (row.error) failed += 1; });
        app.addRows(rows);
        done += 1;
        active -= 1;
        next();
      });
    }

    function add(files) {
      Array.prototype.forEach.call(files, function (f) { queue.push(f); total += 1; });
      next();
    }

    zone.addEventListener("click", function () { input.click(); });
    zone.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") input.click(); });
    input.addEventListener("change", function () { add(input.files); input.value = ""; });
    ["dragenter", "dragover"].forEach(function (type) {
      zone.addEventListener(type, function (e) { e.preventDefault(); zone.classList.add("over"); });
    });
    ["dragleave", "drop"].forEach(function (type) {
      zone.addEventListener(type, function (e) { e.preventDefault(); zone.classList.remove("over"); });
    });
    zone.addEventListener("drop", function (e) { if (e.dataTransfer && e.dataTransfer.files) add(e.dataTransfer.files); });
    // a photo dropped beside the zone must not navigate away from the page
    global.addEventListener("dragover", function (e) { e.preventDefault(); });
    global.addEventListener("drop", function (e) { e.preventDefault(); });
    PI.upload = {add: add};
    report();
  }

  if (PI.app) setup(PI.app);
  else (PI.onReady = PI.onReady || []).push(setup);
})(window);

// Import pages: presets offered per kind and the size limit on the upload form, the list of
// required fields on the mapping form, and the live counts on a running import's page.
(function () {
  "use strict";

  // --- upload form -----------------------------------------------------------------------
  var uploadForm = document.getElementById("upload-form");
  if (uploadForm) {
    var kind = document.getElementById("f-kind");
    var preset = document.getElementById("f-preset");
    var file = document.getElementById("f-file");
    var fileError = document.getElementById("file-error");

    var offerPresets = function () {
      Array.prototype.forEach.call(preset.options, function (option) {
        if (!option.value) return;
        var fits = (option.getAttribute("data-kinds") || "").split(" ").indexOf(kind.value) >= 0;
        option.hidden = !fits;
        option.disabled = !fits;
        if (!fits && option.selected) preset.value = "";
      });
    };
    kind.addEventListener("change", offerPresets);
    offerPresets();

    var fileProblem = function () {
      var max = Number(file.getAttribute("data-max-bytes"));
      if (!file.files || !file.files.length) return "Choose a file to import.";
      if (file.files[0].size === 0) return "The file is empty.";
      if (max && file.files[0].size > max) {
        return "The file is larger than the " + file.getAttribute("data-max-text") + " an import may be.";
      }
      return "";
    };
    var showProblem = function (problem) {
      fileError.textContent = problem;
      fileError.hidden = !problem;
      file.setAttribute("aria-invalid", problem ? "true" : "false");
    };
    file.addEventListener("change", function () {
      var problem = fileProblem();
      showProblem(problem === "Choose a file to import." ? "" : problem);
    });
    uploadForm.addEventListener("submit", function (event) {
      var problem = fileProblem();
      showProblem(problem);
      if (problem) {
        event.preventDefault();
        file.focus();
        return;
      }
      document.getElementById("upload-note").hidden = false;
    });
  }

  // --- mapping form: which required fields are still unmapped -----------------------------
  var missing = document.getElementById("missing");
  if (missing) {
    var required = JSON.parse(missing.getAttribute("data-required") || "[]");
    var provided = JSON.parse(missing.getAttribute("data-provided") || "[]");
    var selects = document.querySelectorAll("select[data-column-field]");
    var update = function () {
      var chosen = provided.slice();
      Array.prototype.forEach.call(selects, function (s) { if (s.value) chosen.push(s.value); });
      var still = required.filter(function (group) {
        return !group.some(function (name) { return chosen.indexOf(name) >= 0; });
      }).map(function (group) { return group.join(" or "); });
      document.getElementById("missing-list").textContent = still.join("; ");
      missing.hidden = still.length === 0;
    };
    Array.prototype.forEach.call(selects, function (s) { s.addEventListener("change", update); });
  }

  // --- run page: poll the status while the import runs --------------------------------------
  var panel = document.getElementById("run-progress");
  if (panel && panel.getAttribute("data-status") === "running") {
    var url = panel.getAttribute("data-status-url");
    var number = new Intl.NumberFormat("en-US");
    var bar = document.getElementById("run-bar");
    var timer = null;
    var poll = function () {
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (s) {
          if (!s) return;
          panel.querySelectorAll("[data-count]").forEach(function (el) {
            var v = s[el.getAttribute("data-count")];
            if (typeof v === "number") el.textContent = number.format(v);
          });
          if (bar && typeof s.progress === "number") {
            bar.value = s.progress;
            document.getElementById("run-percent").textContent = Math.round(s.progress * 100) + "%";
          }
          if (typeof s.rows_per_second === "number") {
            document.getElementById("run-rate").textContent = number.format(Math.round(s.rows_per_second)) + " rows/s";
          }
          if (s.status !== "running") {
            // Finished (or stopped): show the summary, the errors and the report link.
            clearInterval(timer);
            window.location.reload();
          }
        })
        .catch(function () { /* a missed poll is retried a second later */ });
    };
    timer = setInterval(poll, 1000);
  }
})();

// credit-scorer console: guard against double submits and follow a resumed run's progress.
(function () {
  "use strict";

  // A form marked data-once is submitted once: the button is disabled after the first submit.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute("data-once")) return;
    if (form.dataset.sent === "1") { event.preventDefault(); return; }
    form.dataset.sent = "1";
    var button = form.querySelector("button[type=submit]");
    if (button) { button.disabled = true; button.textContent = "Recording…"; }
  });

  // While a decision is being carried out, poll the release's status and reload when it settles.
  var panel = document.getElementById("progress");
  if (!panel || panel.dataset.poll !== "1") return;
  var url = "/releases/" + encodeURIComponent(panel.dataset.release) + "/status.json";
  var text = panel.querySelector("[data-testid=progress-text]");
  var settled = ["live", "deployed", "rejected", "refused", "failed", "resume-failed", "deploy-failed", "rolled-back"];

  function render(state) {
    var steps = panel.querySelector("ol.steps");
    if (!steps) {
      steps = document.createElement("ol");
      steps.className = "steps";
      steps.setAttribute("data-testid", "steps");
      panel.appendChild(steps);
    }
    steps.textContent = "";
    state.steps.forEach(function (step) {
      var item = document.createElement("li");
      item.className = "step " + step.status;
      var name = document.createElement("span");
      name.textContent = step.name;
      var status = document.createElement("span");
      status.className = "muted small";
      status.textContent = " " + step.status + (step.seconds !== null ? " · " + step.seconds.toFixed(1) + " s" : "");
      item.appendChild(name);
      item.appendChild(status);
      steps.appendChild(item);
    });
    var running = state.steps.filter(function (s) { return s.status === "running"; });
    text.textContent = "Decision submitted by " + (state.decided_by || "the approver") + "; the run is " +
      (state.run_status || "resuming") + (running.length ? " (" + running[0].name + ")" : "") + "…";
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (state) {
        if (!state) { setTimeout(poll, 3000); return; }
        var ended = state.resume_exit_code !== null && panel.dataset.resumeCode === "";
        if (settled.indexOf(state.status) >= 0 || ended) {
          window.location.reload();
          return;
        }
        render(state);
        setTimeout(poll, 1000);
      })
      .catch(function () { setTimeout(poll, 3000); });
  }
  setTimeout(poll, 1000);
})();

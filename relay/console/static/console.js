// The relay console's only script: the live tail's updates. Every page reads without it.
"use strict";

(function () {
  var state = document.getElementById("tail-state");
  var table = document.getElementById("tail");
  if (!state || !table || !window.EventSource) {
    return;
  }
  var body = table.tBodies[0];
  var kept = 200;

  function cell(row, text, numeric) {
    var td = row.insertCell(-1);
    td.textContent = text === null || text === undefined ? "" : String(text);
    if (numeric) {
      td.className = "num";
    }
    return td;
  }

  function when(ms) {
    return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  }

  function add(attempt) {
    var row = body.insertRow(0);
    row.className = attempt.outcome + " new";
    cell(row, when(attempt.at));
    cell(row, attempt.webhookId + " " + (attempt.webhookName || ""));
    var code = document.createElement("code");
    code.textContent = attempt.deliveryId;
    row.insertCell(-1).appendChild(code);
    cell(row, attempt.attempt, true);
    cell(row, attempt.outcome);
    cell(row, attempt.status, true);
    cell(row, attempt.latencyMs.toFixed(1) + " ms", true);
    cell(row, attempt.error || "");
    while (body.rows.length > kept) {
      body.deleteRow(-1);
    }
    var empty = document.getElementById("tail-empty");
    if (empty) {
      empty.remove();
    }
  }

  var source = new EventSource(state.dataset.stream);
  source.addEventListener("attempt", function (event) {
    add(JSON.parse(event.data));
  });
  source.addEventListener("open", function () {
    state.dataset.live = "yes";
  });
})();

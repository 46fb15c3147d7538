// The dashboard's campaigns still planning or sending: their figures refresh every three seconds
// from each campaign's progress JSON until it stops sending.
(function () {
  "use strict";
  function follow(row) {
    fetch(row.dataset.progressUrl, { credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (data) {
        row.querySelectorAll("[data-field]").forEach(function (cell) {
          var name = cell.dataset.field;
          if (name === "done") {
            cell.max = data.total || 1;
            cell.value = data.sent + data.failed + data.skipped;
            return;
          }
          if (data[name] !== undefined) { cell.textContent = data[name]; }
        });
        if (data.status === "sending" || data.status === "planning") { setTimeout(function () { follow(row); }, 3000); }
      })
      .catch(function () { setTimeout(function () { follow(row); }, 10000); });
  }
  document.querySelectorAll("tr[data-progress-url]").forEach(function (row) {
    setTimeout(function () { follow(row); }, 3000);
  });
})();

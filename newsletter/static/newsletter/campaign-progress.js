// Live campaign progress in the admin: polls the JSON endpoint every two seconds.
(function () {
  "use strict";
  var box = document.getElementById("campaign-progress");
  if (!box) { return; }
  function refresh() {
    fetch(box.dataset.url, { credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (data) {
        box.querySelectorAll("[data-field]").forEach(function (node) {
          var value = data[node.dataset.field];
          if (node.tagName === "PROGRESS") { node.value = value; return; }
          node.textContent = value === null ? "–" : value;
        });
        if (data.status === "sending" || data.status === "planning") { setTimeout(refresh, 2000); }
      })
      .catch(function () { setTimeout(refresh, 5000); });
  }
  setTimeout(refresh, 2000);
})();

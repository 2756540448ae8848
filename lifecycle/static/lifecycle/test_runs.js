// Accuracy over versions, one line per stage (data from the page's json_script).
(function () {
  "use strict";
  var canvas = document.getElementById("accuracy-chart");
  var data = document.getElementById("accuracy-series");
  if (!canvas || !data || typeof Chart === "undefined") return;
  var series = JSON.parse(data.textContent);
  var colours = ["#2563eb", "#d97706", "#059669", "#dc2626", "#7c3aed", "#0891b2"];
  new Chart(canvas, {
    type: "line",
    data: {
      datasets: series.map(function (s, i) {
        return {
          label: s.stage,
          data: s.points.map(function (p) { return { x: p.x, y: p.y === null ? null : p.y * 100 }; }),
          borderColor: colours[i % colours.length],
          backgroundColor: colours[i % colours.length],
          tension: 0,
          // A run at 100 % sits on the axis' edge: draw its point whole, not cut in half.
          clip: false,
        };
      }),
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      layout: { padding: { top: 8, right: 12 } },
      scales: {
        x: { type: "linear", title: { display: true, text: "Version" }, ticks: { stepSize: 1, precision: 0 } },
        y: { min: 0, max: 100, title: { display: true, text: "Accuracy (%)" } },
      },
    },
  });
  canvas.dataset.rendered = "true";
})();

// loyalty web screens: charts from JSON embedded in the page (Chart.js, vendored), nothing else global.
(function () {
  "use strict";
  function drawCharts(root) {
    if (typeof window.Chart === "undefined") return;
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      if (canvas.dataset.drawn) return;
      canvas.dataset.drawn = "1";
      var config = JSON.parse(canvas.dataset.chart);
      config.options = Object.assign({responsive: true, maintainAspectRatio: false, animation: false}, config.options || {});
      new window.Chart(canvas, config);
    });
  }
  document.addEventListener("DOMContentLoaded", function () { drawCharts(document); });
  document.addEventListener("htmx:afterSettle", function (event) { drawCharts(event.target); });
  window.loyaltyDrawCharts = drawCharts;
})();
// SLA countdowns: <span class="countdown" data-due="ISO time"> shows the time left or how late, every 30 s.
(function () {
  "use strict";
  function span(seconds) {
    var minutes = Math.floor(Math.abs(seconds) / 60), days = Math.floor(minutes / 1440);
    var hours = Math.floor((minutes % 1440) / 60), mins = minutes % 60;
    if (days) return days + "d " + hours + "h";
    return hours ? hours + "h " + (mins < 10 ? "0" : "") + mins + "m" : mins + "m";
  }
  function tick() {
    document.querySelectorAll(".countdown[data-due]").forEach(function (el) {
      var left = (Date.parse(el.dataset.due) - Date.now()) / 1000;
      el.textContent = left >= 0 ? span(left) + " left" : "late by " + span(left);
      el.classList.toggle("error", left < 0);
    });
  }
  document.addEventListener("DOMContentLoaded", function () { tick(); setInterval(tick, 30000); });
})();

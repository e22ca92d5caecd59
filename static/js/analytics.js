// /analytics: the charts, drawn from the page's JSON (#analytics-data); the heat map and the tables are
// the page's own HTML. Words come from the server (#page-text, SPEC §13).
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("analytics-data").textContent);
  const words = JSON.parse((document.getElementById("page-text") || {}).textContent || "{}");
  const word = (key) => (Object.prototype.hasOwnProperty.call(words, key) ? words[key] : key);
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;

  function chart(id, type, series, label, color, horizontal, whole = true) {
    const canvas = document.getElementById(id);
    canvas.dataset.points = String(series.counts.length);
    return new Chart(canvas, {
      type,
      data: { labels: series.labels, datasets: [{ label, data: series.counts, backgroundColor: color,
        borderColor: color, fill: false, tension: 0.2 }] },
      options: { maintainAspectRatio: false, animation: false, indexAxis: horizontal ? "y" : "x",
        plugins: { legend: { display: false } },
        scales: { [horizontal ? "x" : "y"]: { beginAtZero: true, ticks: whole ? { precision: 0 } : {} } } },
    });
  }

  chart("chart-unique", "line", data.unique, word("unique_plates"), "#0d6efd", false);
  chart("chart-provinces", "bar", data.provinces, word("reads"), "#20c997", true);
  chart("chart-cameras", "bar", data.cameras, word("reads_per_hour"), "#6f42c1", false, false);
  document.body.dataset.analyticsReady = "1";
})();

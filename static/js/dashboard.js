// The dashboard: charts from the server's figures, a live feed, counters that move as reads arrive.
(function () {
  "use strict";
  // The page's words, translated on the server (SPEC §13: the template's page_text). They are also
  // LPR.text's fallback: live.js may have read #page-text before it was in the page.
  const pageWords = JSON.parse(document.getElementById("page-text").textContent || "{}");
  const say = (key, values) => window.LPR.text(key, pageWords[key], values);
  const data = JSON.parse(document.getElementById("dashboard-data").textContent);
  const feed = document.getElementById("live-feed");
  const FEED_SIZE = 30;
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;

  function bar(id, labels, counts, color, horizontal) {
    return new Chart(document.getElementById(id), {
      type: "bar",
      // The bars' name (in their tooltips) in the page's language (SPEC §13).
      data: { labels, datasets: [{ label: say("reads"), data: counts, backgroundColor: color }] },
      options: { maintainAspectRatio: false, animation: false, indexAxis: horizontal ? "y" : "x",
        plugins: { legend: { display: false } }, scales: { [horizontal ? "x" : "y"]: { beginAtZero: true, ticks: { precision: 0 } } } },
    });
  }

  const hours = bar("chart-hours", data.stats.per_hour.labels, data.stats.per_hour.counts, "#0d6efd");
  const cameras = bar("chart-cameras", [], [], "#20c997", true);
  const plates = bar("chart-plates", [], [], "#6f42c1", true);
  // A top plate's bar opens the plate's page (its labels are normalised plates).
  plates.options.onClick = (event, bars) => {
    if (bars.length) window.location.href = `/plates/${encodeURIComponent(plates.data.labels[bars[0].index])}`;
  };
  plates.options.onHover = (event, bars) => { event.native.target.style.cursor = bars.length ? "pointer" : ""; };

  function setCounter(key, value) {
    document.querySelectorAll(`[data-counter="${key}"]`).forEach((el) => { el.textContent = String(value); });
  }
  function bump(key) {
    document.querySelectorAll(`[data-counter="${key}"]`).forEach((el) => {
      el.textContent = String((parseInt(el.textContent, 10) || 0) + 1);
    });
  }

  function applyStats(stats) {
    Object.entries(stats.counters).forEach(([key, value]) => setCounter(key, value));
    hours.data.labels = stats.per_hour.labels;
    hours.data.datasets[0].data = stats.per_hour.counts;
    hours.update();
    cameras.data.labels = stats.per_camera.map((c) => c.name || c.camera_id);
    cameras.data.datasets[0].data = stats.per_camera.map((c) => c.count);
    cameras.update();
    plates.data.labels = stats.top_plates.map((p) => p.plate);
    plates.data.datasets[0].data = stats.top_plates.map((p) => p.count);
    plates.update();
  }

  function feedItem(record, fresh) {
    const li = document.createElement("li");
    li.className = "list-group-item d-flex gap-2 align-items-center" + (fresh ? " new" : "");
    li.dataset.recordId = record.id;
    if (record.blacklisted) li.classList.add("list-group-item-danger");
    if (record.thumbnail_url) {
      const img = document.createElement("img");
      img.className = "thumb";
      img.alt = "";
      img.src = record.thumbnail_url;
      li.append(img);
    }
    const text = document.createElement("div");
    const head = document.createElement("div");
    const plate = document.createElement("a");
    plate.className = "plate";
    plate.href = `/records/${encodeURIComponent(record.id)}`;
    plate.textContent = record.plate_number;
    head.append(plate, window.LPR.plateLink(record.plate_normalized), window.LPR.knownBadge(record));
    // "กรุงเทพมหานคร · TH-10"; an unknown province as sent, without a code.
    const province = [record.province, record.province_code].filter(Boolean).join(" · ");
    if (province) {
      const named = document.createElement("span");
      named.className = "province small text-secondary ms-2";
      named.textContent = province;
      head.append(named);
    }
    const where = document.createElement("div");
    where.className = "small";
    where.textContent = [record.camera_name || record.camera_id, record.location].filter(Boolean).join(" · ");
    const when = document.createElement("div");
    when.className = "small text-secondary";
    const confidence = record.confidence == null ? "" : ` · ${Number(record.confidence).toFixed(1)}%`;
    when.textContent = window.LPR.localTime(record.captured_at) + confidence;
    text.append(head, where, when);
    li.append(text);
    return li;
  }

  function addRecord(record, fresh) {
    feed.prepend(feedItem(record, fresh));
    while (feed.children.length > FEED_SIZE) feed.lastElementChild.remove();
  }

  function countRead(record) {
    bump("reads_today");
    bump("reads_last_hour");
    const counts = hours.data.datasets[0].data;
    counts[counts.length - 1] += 1;
    hours.update();
  }

  // Silent cameras (SPEC §11 "Camera offline"): one more when a camera_status names its new offline
  // alert, one fewer when it clears it (null); the periodic figures set the count again.
  const silentLine = document.getElementById("cameras-silent");
  function showSilent() {
    const count = parseInt(silentLine.querySelector('[data-counter="cameras_silent"]').textContent, 10) || 0;
    silentLine.classList.toggle("text-danger", count > 0);
    silentLine.classList.toggle("fw-semibold", count > 0);
    silentLine.classList.toggle("text-secondary", count === 0);
  }
  function countSilent(status) {
    if (status.offline_alert_id === undefined) return;
    const counter = silentLine.querySelector('[data-counter="cameras_silent"]');
    const count = (parseInt(counter.textContent, 10) || 0) + (status.offline_alert_id == null ? -1 : 1);
    setCounter("cameras_silent", Math.max(0, count));
    showSilent();
  }

  data.feed.slice().reverse().forEach((record) => addRecord(record, false));
  applyStats(data.stats);
  window.LPR.startAfter(Number(feed.dataset.lastId) || 0);
  window.LPR.on("new_record", (record) => { addRecord(record, true); countRead(record); });
  window.LPR.on("blacklist_alert", () => bump("hits_today"));
  window.LPR.on("stats", (stats) => { applyStats(stats); showSilent(); });
  window.LPR.on("camera_status", countSilent);
})();

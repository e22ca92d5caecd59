// Live updates on every signed-in page: the Socket.IO channel, blacklist alerts, catch-up after reconnects.
// Everything that came from a camera is put into the page with textContent, never as HTML.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("live-config").textContent);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const handlers = {};
  const shownAlerts = new Map();
  let lastRecordId = null;
  // Reads commit in batches from several writers, so ids may arrive out of order: a read is
  // skipped only if this page has shown it already (the newest few thousand are remembered).
  const seenIds = new Set();
  const SEEN_LIMIT = 5000;
  let connectedOnce = false;

  const timeFormat = new Intl.DateTimeFormat("en-GB", {
    timeZone: config.timezone, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });

  function localTime(iso) {
    if (!iso) return "";
    const parts = Object.fromEntries(timeFormat.formatToParts(new Date(iso)).map((p) => [p.type, p.value]));
    return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second}`;
  }

  function on(event, handler) { (handlers[event] = handlers[event] || []).push(handler); }
  function dispatch(event, data) { (handlers[event] || []).forEach((h) => h(data)); }

  function noteRecord(record) {
    if (lastRecordId === null || record.id > lastRecordId) lastRecordId = record.id;
    seenIds.add(record.id);
    if (seenIds.size > SEEN_LIMIT) seenIds.delete(seenIds.values().next().value);
    window.__lprSeen = window.__lprSeen || {};
    if (!(record.id in window.__lprSeen)) window.__lprSeen[record.id] = Date.now();
  }

  // --- sound: a short two-tone beep made with WebAudio (no audio file needed) ---------------
  let audio = null;
  function beep() {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      if (audio.state === "suspended") audio.resume();
      [0, 0.35, 0.7].forEach((start, i) => {
        const osc = audio.createOscillator();
        const gain = audio.createGain();
        osc.type = "square";
        osc.frequency.value = i % 2 ? 660 : 880;
        gain.gain.setValueAtTime(0.15, audio.currentTime + start);
        gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + start + 0.3);
        osc.connect(gain).connect(audio.destination);
        osc.start(audio.currentTime + start);
        osc.stop(audio.currentTime + start + 0.3);
      });
    } catch (err) { /* no sound in this browser: the alert still shows */ }
  }
  document.addEventListener("click", () => { if (audio && audio.state === "suspended") audio.resume(); });

  // --- blacklist alerts ----------------------------------------------------------------------
  function setField(card, name, text) {
    card.querySelector(`[data-field="${name}"]`).textContent = text == null ? "" : String(text);
  }

  function showAlert(alert, quiet) {
    if (shownAlerts.has(alert.detection_id)) return;
    const card = document.getElementById("alert-template").content.firstElementChild.cloneNode(true);
    const record = alert.record || {};
    const entry = alert.entry || {};
    card.dataset.detectionId = alert.detection_id;
    setField(card, "category", entry.category);
    setField(card, "plate", record.plate_number);
    setField(card, "camera", record.camera_name ? `${record.camera_name} (${record.camera_id})` : record.camera_id);
    setField(card, "location", record.location || "—");
    setField(card, "reason", entry.reason || "—");
    setField(card, "time", localTime(record.captured_at));
    const img = card.querySelector(".alert-image");
    if (record.image_url) img.src = record.image_url; else img.remove();
    const link = card.querySelector('[data-field="link"]');
    link.textContent = "Open record · ดูรายการ";
    link.href = `/records/${encodeURIComponent(record.id)}`;
    const ack = card.querySelector(".btn-ack");
    if (config.can_ack) ack.addEventListener("click", () => acknowledge(alert.detection_id, ack));
    else ack.remove();
    card.querySelector(".btn-dismiss").addEventListener("click", () => removeAlert(alert.detection_id));
    document.getElementById("alert-stack").prepend(card);
    shownAlerts.set(alert.detection_id, card);
    if (!quiet) beep();
  }

  function removeAlert(id) {
    const card = shownAlerts.get(id);
    if (card) card.remove();
    shownAlerts.delete(id);
  }

  function markAcknowledged(data) {
    const card = shownAlerts.get(data.detection_id);
    if (!card) return;
    card.classList.add("acknowledged");
    setField(card, "acked", `✔ ${data.by || ""} ${localTime(data.acknowledged_at)}`);
    const ack = card.querySelector(".btn-ack");
    if (ack) ack.remove();
    setTimeout(() => removeAlert(data.detection_id), 4000);
  }

  async function acknowledge(id, button) {
    button.disabled = true;
    try {
      const response = await fetch(`/alerts/${encodeURIComponent(id)}/acknowledge`, {
        method: "POST", headers: { "X-CSRFToken": csrf, Accept: "application/json" }, credentials: "same-origin",
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      markAcknowledged(await response.json());
    } catch (err) {
      button.disabled = false;
      button.textContent = "Retry acknowledge · ลองอีกครั้ง";
    }
  }

  // --- catch-up: what happened while this page was not connected -------------------------
  async function catchUp(firstLoad) {
    const query = lastRecordId === null ? "" : `?after=${encodeURIComponent(lastRecordId)}`;
    try {
      const response = await fetch(`/live/missed${query}`, { credentials: "same-origin" });
      if (!response.ok) return;
      const missed = await response.json();
      missed.records.forEach((record) => {
        if (seenIds.has(record.id)) return;
        noteRecord(record);
        dispatch("new_record", record);
      });
      // Hits still waiting when the page opens show quietly; ones missed while disconnected beep.
      missed.alerts.forEach((alert) => showAlert(alert, firstLoad));
    } catch (err) { /* the next reconnect tries again */ }
  }

  function setState(state, label) {
    const el = document.getElementById("live-state");
    if (!el) return;
    el.className = `navbar-text me-3 small ${state}`;
    el.querySelector(".live-label").textContent = label;
  }

  function connect() {
    const socket = io({ transports: ["websocket", "polling"] });
    socket.on("connect", () => {
      setState("online", "live · สด");
      catchUp(!connectedOnce);
      connectedOnce = true;
    });
    socket.on("disconnect", () => setState("offline", "reconnecting… · กำลังเชื่อมต่อ"));
    socket.on("connect_error", () => setState("offline", "offline · ออฟไลน์"));
    socket.on("new_record", (record) => {
      if (seenIds.has(record.id)) return;
      noteRecord(record);
      dispatch("new_record", record);
    });
    socket.on("blacklist_alert", (alert) => { showAlert(alert, false); dispatch("blacklist_alert", alert); });
    socket.on("blacklist_ack", markAcknowledged);
    socket.on("camera_status", (data) => dispatch("camera_status", data));
    socket.on("stats", (data) => {
      // Any page's headline numbers ([data-counter]) follow the periodic figures.
      Object.entries(data.counters || {}).forEach(([key, value]) => {
        document.querySelectorAll(`[data-counter="${key}"]`).forEach((el) => { el.textContent = String(value); });
      });
      dispatch("stats", data);
    });
    return socket;
  }

  // Forms that ask before they submit (data-confirm), without inline script.
  document.addEventListener("submit", (event) => {
    const message = event.target.dataset && event.target.dataset.confirm;
    if (message && !window.confirm(message)) event.preventDefault();
  });

  window.LPR = {
    on, localTime,
    startAfter(id) { if (lastRecordId === null || id > lastRecordId) lastRecordId = id; },
  };
  document.addEventListener("DOMContentLoaded", () => { window.LPR.socket = connect(); });
})();

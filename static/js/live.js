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

  // The page's words (SPEC §13), translated on the server: base.html's #live-text and the page's own
  // #page-text. "{name}" placeholders are filled from `values`.
  const words = Object.assign({}, JSON.parse(document.getElementById("live-text").textContent));
  const pageText = document.getElementById("page-text");
  if (pageText) Object.assign(words, JSON.parse(pageText.textContent || "{}"));
  function text(key, fallback, values) {
    const template = Object.prototype.hasOwnProperty.call(words, key) ? words[key] : (fallback == null ? key : fallback);
    if (!values) return template;
    return template.replace(/\{(\w+)\}/g, (whole, name) => (values[name] != null ? String(values[name]) : whole));
  }

  const yearOffset = config.date_era === "be" ? 543 : 0;
  const timeFormat = new Intl.DateTimeFormat("en-GB", {
    timeZone: config.timezone, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });

  function localTime(iso) {
    if (!iso) return "";
    const parts = Object.fromEntries(timeFormat.formatToParts(new Date(iso)).map((p) => [p.type, p.value]));
    const year = Number(parts.year) + yearOffset;  // DATE_ERA=be: Buddhist-era years (SPEC §12)
    return `${year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second}`;
  }

  // The known plate a read is (SPEC §10): a small badge with its name and group, or an empty text node.
  function knownBadge(record) {
    const known = record && record.known;
    if (!known) return document.createTextNode("");
    const badge = document.createElement("span");
    badge.className = "badge text-bg-info known-badge ms-1";
    badge.title = text("known_plate");
    badge.textContent = [known.name, known.group].filter(Boolean).join(" · ");
    return badge;
  }

  // A small clock beside a read's plate: the plate's own page (SPEC §10); built from text, never HTML.
  const SVG = "http://www.w3.org/2000/svg";
  function plateLink(plate) {
    const link = document.createElement("a");
    if (!plate) return link;
    link.className = "plate-page";
    link.href = `/plates/${encodeURIComponent(plate)}`;
    link.title = text("plate_history", "", { plate });
    link.setAttribute("aria-label", link.title);
    const icon = document.createElementNS(SVG, "svg");
    icon.setAttribute("width", "14");
    icon.setAttribute("height", "14");
    icon.setAttribute("viewBox", "0 0 16 16");
    icon.setAttribute("aria-hidden", "true");
    const circle = document.createElementNS(SVG, "circle");
    [["cx", "8"], ["cy", "8"], ["r", "6.5"]].forEach(([k, v]) => circle.setAttribute(k, v));
    const hands = document.createElementNS(SVG, "path");
    hands.setAttribute("d", "M8 4.4V8l2.6 1.6");
    hands.setAttribute("stroke-linecap", "round");
    [circle, hands].forEach((part) => {
      part.setAttribute("fill", "none");
      part.setAttribute("stroke", "currentColor");
      part.setAttribute("stroke-width", "1.6");
      icon.append(part);
    });
    link.append(icon);
    return link;
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
  // Repeated hits of one plate at one camera share a card with a count; the newest few cards show,
  // the rest wait behind "+N more"; the bar acknowledges them all or folds the stack away.
  const MAX_CARDS = 3;
  const groups = new Map();       // plate + camera -> {card, ids: Set of detection ids, acked: Set, count}
  const groupOfDetection = new Map();
  let folded = false;

  function setField(card, name, text) {
    card.querySelector(`[data-field="${name}"]`).textContent = text == null ? "" : String(text);
  }

  function groupKey(alert) {
    const record = alert.record || {};
    if (alert.trigger) return `${alert.trigger}\u0000${alert.plate || record.plate_normalized}\u0000${alert.camera_id || record.camera_id}`;
    return `${record.plate_normalized || record.plate_number}\u0000${record.camera_id}`;
  }

  // A blacklist card holds hits (detection ids); the cards of other triggers hold alerts ("a" + id).
  function cardId(alert) { return alert.trigger ? `a${alert.id}` : alert.detection_id; }
  function ackId(data) { return data.detection_id != null ? data.detection_id : `a${data.alert_id}`; }

  // The other triggers (SPEC §11): the same card in its own colour, saying what happened.
  const TRIGGER_LABELS = {
    not_on_list: text("not_on_list"), overstay: text("overstay"), camera_offline: text("camera_offline"),
  };

  function minutesText(minutes) {
    const h = Math.floor(minutes / 60);
    const m = Math.round(minutes % 60);
    if (!h) return text("minutes", "", { m });
    return m ? text("hours_minutes", "", { h, m }) : text("hours", "", { h });
  }

  function triggerText(alert) {
    const detail = alert.detail || {};
    if (alert.trigger === "not_on_list") return text("not_on_list_of", "", { group: detail.group || "" });
    if (alert.trigger === "overstay") {
      const stay = minutesText(Math.floor((detail.stay_seconds || 0) / 60));
      if (detail.max_stay_minutes == null) return text("overstay_for", "", { stay });
      return text("overstay_max", "", { stay, max: minutesText(detail.max_stay_minutes) });
    }
    return alert.trigger.replace(/_/g, " ");
  }

  // A silent camera (SPEC §11 "Camera offline"): its name and id, since when nothing came from it.
  function fillOfflineCard(card, alert) {
    const detail = alert.detail || {};
    const name = detail.camera_name;
    setField(card, "plate", name || alert.camera_id);
    setField(card, "head-plate", text("silent", "", { camera: name || alert.camera_id }));
    setField(card, "match", text("silent_since", "", { time: localTime(detail.last_seen || alert.created_at) }));
    setField(card, "camera", name ? `${name} (${alert.camera_id})` : alert.camera_id);
    card.querySelector('[data-field="location"]').parentElement.hidden = true;
    setField(card, "time", localTime(alert.created_at));
    card.querySelector(".alert-image").hidden = true;
    const link = card.querySelector('[data-field="link"]');
    link.textContent = text("cameras");
    link.href = "/cameras";
  }

  function fillTriggerCard(card, alert) {
    const record = alert.record || {};
    const detail = alert.detail || {};
    const camera = record.camera_name ? `${record.camera_name} (${alert.camera_id || record.camera_id})` : (alert.camera_id || record.camera_id);
    card.classList.add(`kind-${alert.trigger}`);
    card.dataset.trigger = alert.trigger;
    card.querySelector(".card-header").classList.remove("bg-danger");
    card.querySelector(".alert-head-label").textContent = TRIGGER_LABELS[alert.trigger] || alert.trigger;
    setField(card, "category", detail.group || "");
    card.querySelector('[data-field="category"]').classList.replace("text-danger", "text-dark");
    card.querySelector(".alert-count").classList.replace("bg-warning", "bg-light");  // amber on amber
    const plate = record.plate_corrected || record.plate_number || alert.plate || "";
    setField(card, "plate", plate);
    setField(card, "head-plate", `${plate} · ${triggerText(alert)}`);
    setField(card, "match", triggerText(alert));
    setField(card, "camera", camera || "—");
    setField(card, "location", record.location || "—");
    card.querySelector('[data-field="reason"]').parentElement.hidden = true;
    if (alert.trigger === "camera_offline") { fillOfflineCard(card, alert); return; }
    setField(card, "time", localTime(alert.trigger === "overstay" ? detail.entered_at : (record.captured_at || alert.created_at)));
    const img = card.querySelector(".alert-image");
    if (record.thumbnail_url || record.image_url) { img.src = record.image_url || record.thumbnail_url; img.hidden = false; } else { img.hidden = true; }
    const link = card.querySelector('[data-field="link"]');
    if (alert.trigger === "overstay") { link.textContent = text("visits"); link.href = "/visits"; }
    else if (record.id) { link.textContent = text("open_record"); link.href = `/records/${encodeURIComponent(record.id)}`; }
    else { link.textContent = ""; link.removeAttribute("href"); }
  }

  // How the read matched its entry, naming the entry's plate: the card's plate line is the read's.
  const MATCH_WORDING = { lookalike: "lookalike", fuzzy: "fuzzy", pattern: "pattern", normalized: "normalized" };

  function matchText(alert) {
    const entry = alert.entry || {};
    if (!alert.match_type || alert.match_type === "exact") return "";
    const province = entry.province_code ? ` · ${entry.province_code}` : "";
    const wording = MATCH_WORDING[alert.match_type];
    if (!wording) return text("other_match", "", { kind: alert.match_type, plate: entry.license_plate_text || "" });
    return text(wording, "", { plate: entry.plate_normalized || entry.license_plate_text || "" }) + province;
  }

  function fillCard(card, alert) {
    const record = alert.record || {};
    const entry = alert.entry || {};
    setField(card, "category", entry.category ? text(`category_${entry.category}`, entry.category) : "");
    const plate = record.plate_corrected || record.plate_number;  // a correction's hit shows the plate it is
    setField(card, "plate", plate);
    setField(card, "head-plate", `${plate} · ${record.camera_name || record.camera_id}`);
    setField(card, "match", matchText(alert));
    setField(card, "camera", record.camera_name ? `${record.camera_name} (${record.camera_id})` : record.camera_id);
    setField(card, "location", record.location || "—");
    setField(card, "reason", entry.reason || "—");
    setField(card, "time", localTime(record.captured_at));
    const img = card.querySelector(".alert-image");
    if (record.image_url) { img.src = record.image_url; img.hidden = false; } else { img.hidden = true; }
    const link = card.querySelector('[data-field="link"]');
    link.textContent = text("open_record");
    link.href = `/records/${encodeURIComponent(record.id)}`;
  }

  function newCard(key) {
    const card = document.getElementById("alert-template").content.firstElementChild.cloneNode(true);
    const ack = card.querySelector(".btn-ack");
    if (config.can_ack) ack.addEventListener("click", () => acknowledge([...groups.get(key).ids], ack));
    else ack.remove();
    card.querySelector(".btn-dismiss").addEventListener("click", () => removeGroup(key));
    // Only the newest card shows whole; the others are one line each, opened by a click.
    card.querySelector(".card-header").addEventListener("click", () => {
      if (card.classList.contains("compact")) { card.classList.add("open"); layout(); }
    });
    return card;
  }

  // "×N": the hits this page saw, or the alert's own count of repeats (SPEC §11), whichever is more.
  function showCount(group, alert) {
    group.repeats = Math.max(group.repeats || 1, Number(alert.repeat_count) || 1);
    const count = Math.max(group.count, group.repeats);
    setField(group.card, "count", count);
    group.card.querySelector(".alert-count").hidden = count < 2;
  }

  function showAlert(alert, quiet) {
    const id = cardId(alert);
    if (groupOfDetection.has(id)) {  // the same alert again: a repeat within ALERT_REPEAT_SECONDS
      const shown = groups.get(groupOfDetection.get(id));
      if (shown) showCount(shown, alert);
      return;
    }
    const key = groupKey(alert);
    let group = groups.get(key);
    if (!group || group.ids.size === group.acked.size) {
      if (group) removeGroup(key);
      group = { card: newCard(key), ids: new Set(), acked: new Set(), count: 0 };
      groups.set(key, group);
    }
    group.ids.add(id);
    groupOfDetection.set(id, key);
    group.count += 1;
    if (alert.trigger) { group.card.dataset.alertId = alert.id; fillTriggerCard(group.card, alert); }
    else { group.card.dataset.detectionId = alert.detection_id; fillCard(group.card, alert); }
    showCount(group, alert);
    document.querySelector("#alert-stack .alert-cards").prepend(group.card);  // newest first
    if (alert.resolved_at) markResolved(alert);
    layout();
    if (!quiet && !alert.resolved_at) beep();
  }

  // A silent camera was heard from again: its card says so (it still waits for acknowledgement).
  function markResolved(data) {
    const key = groupOfDetection.get(`a${data.id}`);
    const group = key && groups.get(key);
    if (!group || group.card.classList.contains("resolved")) return;
    group.card.classList.add("resolved", "border-success");
    group.card.querySelector(".card-header").classList.add("bg-success");
    const label = group.card.querySelector(".alert-head-label");
    if (data.trigger === "camera_offline") label.textContent = text("camera_back");
    setField(group.card, "acked", text("resolved", "", { time: localTime(data.resolved_at).slice(11) }));
  }

  function removeGroup(key) {
    const group = groups.get(key);
    if (!group) return;
    group.card.remove();
    group.ids.forEach((id) => groupOfDetection.delete(id));
    groups.delete(key);
    layout();
  }

  function layout() {
    const stack = document.getElementById("alert-stack");
    const cards = [...stack.querySelectorAll(".alert-cards > .lpr-alert")];
    stack.hidden = cards.length === 0;
    stack.classList.toggle("folded", folded);
    cards.forEach((card, i) => {
      card.hidden = folded || i >= MAX_CARDS;
      card.classList.toggle("compact", i > 0 && !card.classList.contains("open"));
    });
    const hiddenCount = folded ? cards.length : Math.max(0, cards.length - MAX_CARDS);
    stack.querySelector(".alert-total").textContent = String(cards.length);
    stack.querySelector(".alert-more").hidden = hiddenCount === 0 || folded;
    stack.querySelector(".alert-more-count").textContent = String(hiddenCount);
    const pending = [...groups.values()].some((g) => g.ids.size > g.acked.size);
    stack.querySelector(".btn-ack-all").hidden = !config.can_ack || !pending;
    stack.querySelector(".alert-stack-toggle").setAttribute("aria-expanded", String(!folded));
  }

  function markAcknowledged(data) {
    const id = ackId(data);
    const key = groupOfDetection.get(id);
    const group = key && groups.get(key);
    if (!group) return;
    group.acked.add(id);
    if (group.acked.size < group.ids.size) return;
    group.card.classList.add("acknowledged");
    setField(group.card, "acked", `✔ ${data.by || ""} ${localTime(data.acknowledged_at)}`);
    const ack = group.card.querySelector(".btn-ack");
    if (ack) ack.remove();
    layout();
    setTimeout(() => removeGroup(key), 4000);
  }

  async function acknowledge(ids, button) {
    if (button) button.disabled = true;
    try {
      const response = await fetch("/alerts/acknowledge", {
        method: "POST", credentials: "same-origin",
        headers: { "X-CSRFToken": csrf, Accept: "application/json", "Content-Type": "application/json" },
        body: JSON.stringify({
          detection_ids: ids.filter((id) => typeof id === "number"),
          alert_ids: ids.filter((id) => typeof id === "string").map((id) => Number(id.slice(1))),
        }),
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const answer = await response.json();
      answer.acknowledged.forEach(markAcknowledged);
      (answer.alerts || []).forEach(markAcknowledged);
    } catch (err) {
      if (button) { button.disabled = false; button.textContent = text("retry"); }
    }
  }

  function acknowledgeAll(button) {
    const ids = [];
    groups.forEach((g) => g.ids.forEach((id) => { if (!g.acked.has(id)) ids.push(id); }));
    if (ids.length) acknowledge(ids, button).then(() => { button.disabled = false; });
  }

  // The hits table of the overview and the dashboard follows the alerts and acknowledgements.
  function addHitRow(alert) {
    const body = document.getElementById("hits-body");
    if (!body || body.querySelector(`tr[data-detection-id="${CSS.escape(String(alert.detection_id))}"]`)) return;
    const record = alert.record || {};
    const entry = alert.entry || {};
    const row = document.createElement("tr");
    row.dataset.detectionId = alert.detection_id;
    row.className = "new-row";
    const cells = [localTime(record.received_at), null, record.camera_name || record.camera_id, null, null];
    cells.forEach((text) => { const td = document.createElement("td"); if (text != null) td.textContent = text; row.append(td); });
    const plate = document.createElement("a");
    plate.className = "plate";
    plate.href = `/records/${encodeURIComponent(record.id)}`;
    plate.textContent = record.plate_number;
    row.children[1].append(plate, plateLink(record.plate_normalized));
    const category = document.createElement("span");
    category.className = "badge text-bg-secondary";
    category.textContent = entry.category ? text(`category_${entry.category}`, entry.category) : "";
    row.children[3].append(category, ` ${entry.reason || ""}`);
    const pending = document.createElement("span");
    pending.className = "badge text-bg-danger";
    pending.textContent = text("pending");
    row.children[4].className = "hit-ack";
    row.children[4].append(pending);
    body.querySelectorAll(".empty-row").forEach((empty) => empty.remove());
    body.prepend(row);
    while (body.children.length > (Number(body.dataset.limit) || 10)) body.lastElementChild.remove();
  }

  function ackHitRow(data) {
    const cell = document.querySelector(`#hits-body tr[data-detection-id="${CSS.escape(String(data.detection_id))}"] .hit-ack`);
    if (cell) cell.textContent = `✔ ${localTime(data.acknowledged_at).slice(11)}`;
  }
  on("blacklist_alert", addHitRow);
  on("blacklist_ack", ackHitRow);

  document.addEventListener("DOMContentLoaded", () => {
    const stack = document.getElementById("alert-stack");
    if (!stack) return;
    stack.querySelector(".btn-ack-all").addEventListener("click", (event) => acknowledgeAll(event.currentTarget));
    stack.querySelector(".alert-stack-toggle").addEventListener("click", () => { folded = !folded; layout(); });
  });

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
      (missed.other_alerts || []).forEach((alert) => showAlert(alert, firstLoad));
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
      setState("online", text("live"));
      catchUp(!connectedOnce);
      connectedOnce = true;
    });
    socket.on("disconnect", () => setState("offline", text("reconnecting")));
    socket.on("connect_error", () => setState("offline", text("offline")));
    socket.on("new_record", (record) => {
      if (seenIds.has(record.id)) return;
      noteRecord(record);
      dispatch("new_record", record);
    });
    socket.on("blacklist_alert", (alert) => { showAlert(alert, false); dispatch("blacklist_alert", alert); });
    socket.on("blacklist_ack", (data) => { markAcknowledged(data); dispatch("blacklist_ack", data); });
    socket.on("alert", (alert) => { showAlert(alert, false); dispatch("alert", alert); });
    socket.on("alert_ack", (data) => { markAcknowledged(data); dispatch("alert_ack", data); });
    socket.on("alert_resolved", (data) => { markResolved(data); dispatch("alert_resolved", data); });
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
    on, localTime, plateLink, knownBadge, text,
    startAfter(id) { if (lastRecordId === null || id > lastRecordId) lastRecordId = id; },
  };
  document.addEventListener("DOMContentLoaded", () => { window.LPR.socket = connect(); });
})();

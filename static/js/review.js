// The review queue (/review): one waiting read at a time, cleared from the keyboard.
// Enter confirms the read as sent, or saves the correction when the plate or province was changed;
// Esc (or "s" outside the plate field) skips; ↑/↓ (←/→ outside the plate field) move between reads.
// Reads come from GET /api/review, oldest first, 50 at a time; nothing reloads the page.
// Everything that came from a camera is put into the page with textContent, never as HTML.
// Its words come translated from review.html's page_text (SPEC §13): LPR.text(key, fallback, values).
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("review-config").textContent);
  const $ = (id) => document.getElementById(id);
  const card = $("review-card"), plateInput = $("review-plate"), provinceSelect = $("review-province");
  const PAGE = 50;
  const queue = [];  // loaded reads still waiting (skipped ones stay, cleared ones leave)
  let index = 0;
  let nextAfter = null;  // the API's next_after_id: more to load after the last loaded read
  let exhausted = false;
  let waiting = Number($("review-count").textContent) || 0;
  let busy = false;

  const localTime = LprPage.timeFormatter(config.timezone);
  // The page's own words are also the fallback: LPR.text may have read #page-text before it was in the page.
  const words = JSON.parse(document.getElementById("page-text").textContent || "{}");
  const text = (key, values) => window.LPR.text(key, words[key], values);

  const api = LprPage.api;

  async function load() {
    if (exhausted) return;
    const after = nextAfter !== null ? nextAfter : (queue.length ? queue[queue.length - 1].record.id : null);
    const answer = await api("GET", `/api/review?per_page=${PAGE}` + (after !== null ? `&after_id=${after}` : ""));
    if (!answer.ok) { status(text("load_failed", { status: answer.status }), true); return; }
    const known = new Set(queue.map((item) => item.record.id));
    answer.data.items.forEach((item) => { if (!known.has(item.record.id)) queue.push(item); });
    nextAfter = answer.data.next_after_id;
    exhausted = nextAfter === null;
    setWaiting(answer.data.total);
  }

  function setWaiting(count) {
    waiting = Math.max(0, count);
    $("review-count").textContent = String(waiting);
    const badge = $("nav-review-count");
    if (badge && !badge.textContent.endsWith("+")) badge.textContent = String(waiting);
  }

  function status(text, bad) {
    const line = $("review-status");
    line.textContent = text || "";
    line.className = "small mt-1 " + (bad ? "text-danger" : "text-success");
  }

  function reasonText(reason) {
    if (reason.kind === "low_confidence") {
      return text("low_confidence", { confidence: Number(reason.confidence).toFixed(1), threshold: reason.threshold });
    }
    const entry = reason.entry || {};
    const how = text(reason.kind === "lookalike" ? "lookalike_of" : "one_edit_from", { plate: entry.license_plate_text || "" });
    return how +
      (entry.category ? ` (${window.LPR.text(`category_${entry.category}`, entry.category)})` : "") + (entry.reason ? `: ${entry.reason}` : "");
  }

  function show() {
    const item = queue[index];
    $("review-empty").hidden = !(queue.length === 0 && exhausted);
    $("review-end").hidden = !(queue.length > 0 && index >= queue.length && exhausted);
    card.hidden = !item;
    $("review-skipped").textContent = String(queue.length);
    $("review-position").textContent = item ? text("position", { n: index + 1, total: `${queue.length}${exhausted ? "" : "+"}` }) : "";
    if (!item) return;
    const r = item.record;
    card.dataset.recordId = String(r.id);
    const image = $("review-image");
    if (r.image_url) { image.src = r.image_url; image.hidden = false; } else { image.removeAttribute("src"); image.hidden = true; }
    $("review-no-image").hidden = Boolean(r.image_url);
    $("review-link").href = `/records/${r.id}`;
    $("review-id").textContent = String(r.id);
    $("review-sent").textContent = r.plate_number + (r.province ? ` · ${r.province}` : "");
    $("review-camera").textContent = r.camera_name ? `${r.camera_name} (${r.camera_id})` : r.camera_id;
    $("review-time").textContent = localTime(r.received_at);
    $("review-confidence").textContent = r.confidence === null ? "—" : Number(r.confidence).toFixed(1);
    const reasons = $("review-reasons");
    reasons.replaceChildren(...item.reasons.map((reason) => {
      const li = document.createElement("li");
      li.className = reason.kind === "low_confidence" ? "text-warning-emphasis" : "text-danger";
      li.textContent = reasonText(reason);
      return li;
    }));
    item.plate = r.plate_normalized;
    item.province = r.province_code || "";
    plateInput.value = item.plate;
    provinceSelect.value = item.province;
    if (provinceSelect.value !== item.province) provinceSelect.value = "";
    plateInput.classList.remove("is-invalid");
    plateInput.focus();
    plateInput.select();
    const next = queue[index + 1];
    if (next && next.record.image_url) new Image().src = next.record.image_url;  // ready when it is shown
  }

  async function move(step) {
    index = Math.max(0, Math.min(index + step, queue.length));
    if (index >= queue.length - 5 && !exhausted) await load();
    show();
  }

  async function clear() {
    const item = queue[index];
    if (!item || busy) return;
    busy = true;
    const r = item.record;
    const plate = plateInput.value.trim(), province = provinceSelect.value;
    const changed = plate !== item.plate || province !== item.province;
    const answer = changed
      ? await api("PATCH", `/api/records/${r.id}`, { plate_corrected: plate, province: province || null })
      : await api("POST", `/api/review/${r.id}/confirm`);
    busy = false;
    if (answer.ok || answer.status === 409 || answer.status === 404) {
      // Cleared here, or by someone else meanwhile (409/404): either way it no longer waits.
      queue.splice(index, 1);
      setWaiting(waiting - 1);
      status(answer.ok ? (changed ? text("corrected_to", { id: r.id, plate: answer.data.plate_corrected })
        : text("confirmed", { id: r.id })) : text("cleared_already", { id: r.id }), !answer.ok);
      if (index >= queue.length - 5 && !exhausted) await load();
      show();
      return;
    }
    const error = answer.data && answer.data.error;
    // The API's message is English (SPEC §13 keeps the API so); the page says it by the field, in its language.
    const message = error ? window.LPR.text(`error_${error.field}`, words[`error_${error.field}`] || error.message) : text("not_saved", { status: answer.status });
    if (error && error.field === "province") {
      status(message, true);
    } else {
      plateInput.classList.add("is-invalid");
      $("review-error").textContent = message;
    }
    plateInput.focus();
  }

  function inField(event) {
    return event.target === plateInput;
  }

  document.addEventListener("keydown", (event) => {
    if (card.hidden || event.altKey || event.ctrlKey || event.metaKey) return;
    const key = event.key;
    if (key === "Enter" && event.target === provinceSelect) {
      event.preventDefault();
      clear();
    } else if (key === "Escape" || (key === "s" && !inField(event) && event.target.tagName !== "SELECT")) {
      event.preventDefault();
      move(1);
    } else if (key === "ArrowDown" && event.target.tagName !== "SELECT") {
      event.preventDefault();
      move(1);
    } else if (key === "ArrowUp" && event.target.tagName !== "SELECT") {
      event.preventDefault();
      move(-1);
    } else if ((key === "ArrowRight" || key === "ArrowLeft") && !inField(event) && event.target.tagName !== "SELECT") {
      event.preventDefault();
      move(key === "ArrowRight" ? 1 : -1);
    }
  });
  $("review-form").addEventListener("submit", (event) => { event.preventDefault(); clear(); });
  $("review-skip").addEventListener("click", () => move(1));
  $("review-next").addEventListener("click", () => move(1));
  $("review-prev").addEventListener("click", () => move(-1));
  $("review-restart").addEventListener("click", async () => {
    queue.length = 0; index = 0; nextAfter = null; exhausted = false;
    await load();
    show();
  });
  plateInput.addEventListener("input", () => plateInput.classList.remove("is-invalid"));

  load().then(show);
})();

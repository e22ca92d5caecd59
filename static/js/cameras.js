// The cameras page: online state, silence (SPEC §11 "Camera offline") and read counts follow the live events.
(function () {
  "use strict";
  // The page's words, translated on the server (SPEC §13: the template's page_text). They are also
  // LPR.text's fallback: live.js may have read #page-text before it was in the page.
  const pageWords = JSON.parse(document.getElementById("page-text").textContent || "{}");
  const say = (key, values) => window.LPR.text(key, pageWords[key], values);
  function rowOf(cameraId) {
    return document.querySelector(`tr[data-camera-id="${CSS.escape(String(cameraId))}"]`);
  }
  window.LPR.on("camera_status", (data) => {
    const row = rowOf(data.camera_id);
    if (!row) return;
    if (data.health) {
      const health = row.querySelector(".camera-health");
      const badge = document.createElement("span");
      const colours = { PASS: "text-bg-success", WARN: "text-bg-warning", FAIL: "text-bg-danger" };
      badge.className = `badge ${colours[data.health] || "text-bg-secondary"}`;
      badge.textContent = data.health;
      health.replaceChildren(badge);
    }
    // A silent camera has an open camera_offline alert; its next read or report clears it (null).
    if (data.offline_alert_id !== undefined) row.querySelector(".camera-silent").hidden = data.offline_alert_id == null;
    if (data.online === undefined) return;
    const badge = row.querySelector(".camera-state");
    badge.className = `badge camera-state ${data.online ? "text-bg-success" : "text-bg-secondary"}`;
    badge.textContent = data.online ? say("online") : say("offline");
  });
  window.LPR.on("new_record", (record) => {
    const row = rowOf(record.camera_id);
    if (!row) return;
    const reads = row.querySelector(".camera-reads");
    reads.textContent = String((parseInt(reads.textContent, 10) || 0) + 1);
    row.querySelector(".camera-last-seen").textContent = window.LPR.localTime(record.received_at);
  });
})();

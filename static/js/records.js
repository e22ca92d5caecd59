// The records list: on its first page, reads that match the filter appear at the top as they arrive.
// Its words come translated from records.html's page_text (SPEC §13).
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("records-data").textContent);
  const body = document.getElementById("records-body");
  // The page's own words are also the fallback: LPR.text may have read #page-text before it was in the page.
  const words = JSON.parse(document.getElementById("page-text").textContent || "{}");
  window.LPR.startAfter(data.last_id);
  if (!data.live) return;
  const f = data.filter;
  // "similar": the server's own regular expressions (records.similar_patterns), so a live row matches
  // exactly as the search does.
  const similar = (f.similar || []).map((pattern) => new RegExp(pattern, "u"));

  function matches(record) {
    const plate = record.plate_normalized || "";
    if (f.plate) {
      if (f.plate_mode === "exact" && plate !== f.plate) return false;
      if (f.plate_mode === "prefix" && !plate.startsWith(f.plate)) return false;
      if (f.plate_mode === "contains" && !plate.includes(f.plate)) return false;
      if (f.plate_mode === "similar" && !similar.some((re) => re.test(plate))) return false;
    }
    if (f.province_code && record.province_code !== f.province_code) return false;
    if (f.camera_id && record.camera_id !== f.camera_id) return false;
    if (f.blacklisted && !record.blacklisted) return false;
    if (f.min_confidence != null && !(record.confidence >= f.min_confidence)) return false;
    return true;
  }

  function cell(row, content) {
    const td = document.createElement("td");
    if (content instanceof Node) td.append(content); else td.textContent = content == null ? "" : String(content);
    row.append(td);
    return td;
  }

  // "กรุงเทพมหานคร · TH-10" (the code smaller); an unknown province as sent, without a code.
  function province(record) {
    const out = document.createDocumentFragment();
    if (record.province) out.append(record.province);
    if (record.province_code) {
      const code = document.createElement("span");
      code.className = "text-secondary small text-nowrap";
      code.textContent = `· ${record.province_code}`;
      out.append(record.province ? " " : "", code);
    }
    return out;
  }

  function row(record) {
    const tr = document.createElement("tr");
    tr.dataset.recordId = record.id;
    tr.className = "new-row" + (record.blacklisted ? " table-danger" : "");
    let thumb = "";
    if (record.thumbnail_url) {
      thumb = document.createElement("img");
      thumb.className = "thumb";
      thumb.alt = "";
      thumb.src = record.thumbnail_url;
    }
    cell(tr, thumb);
    const link = document.createElement("a");
    link.className = "plate";
    link.href = `/records/${encodeURIComponent(record.id)}`;
    link.textContent = record.plate_number;
    cell(tr, link).append(window.LPR.plateLink(record.plate_normalized), window.LPR.knownBadge(record));
    cell(tr, province(record)).className = "province";
    cell(tr, record.camera_name || data.names[record.camera_id] || record.camera_id);
    cell(tr, record.location);
    cell(tr, record.confidence == null ? "" : Number(record.confidence).toFixed(1)).className = "text-end";
    const when = cell(tr, window.LPR.localTime(record.received_at));
    when.className = "text-nowrap";
    if (Math.abs(new Date(record.received_at) - new Date(record.captured_at)) > 60000) {
      const captured = document.createElement("div");
      captured.className = "small text-secondary";
      captured.textContent = window.LPR.text("captured", words.captured, { time: window.LPR.localTime(record.captured_at) });
      when.append(captured);
    }
    let badge = "";
    if (record.blacklisted) {
      badge = document.createElement("span");
      badge.className = "badge text-bg-danger";
      badge.textContent = window.LPR.text("blacklist", words.blacklist);
    }
    cell(tr, badge);
    return tr;
  }

  window.LPR.on("new_record", (record) => {
    if (!matches(record) || body.querySelector(`tr[data-record-id="${CSS.escape(String(record.id))}"]`)) return;
    const empty = body.querySelector(".empty-row");
    if (empty) empty.remove();
    body.prepend(row(record));
    const total = document.getElementById("record-total");
    // Only an exact count can be counted on; "more than" and "about" figures stay as they are.
    if (total && total.dataset.kind === "exact") total.textContent = ((parseInt(total.textContent.replace(/,/g, ""), 10) || 0) + 1).toLocaleString("en");
    while (body.children.length > 50) body.lastElementChild.remove();
  });
})();

// What the pages' own scripts share (review.js, alerts.js): times shown in the site's TIMEZONE (years
// in DATE_ERA), and
// JSON calls to the API with the page's CSRF token (README "Accounts and roles").
(function () {
  "use strict";
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const liveConfig = document.getElementById("live-config");
  // DATE_ERA=be shows Buddhist-era years (SPEC §12), as the server's pages do.
  const yearOffset = liveConfig && JSON.parse(liveConfig.textContent).date_era === "be" ? 543 : 0;

  function timeFormatter(timezone) {
    const format = new Intl.DateTimeFormat("en-GB", {
      timeZone: timezone, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
    });
    return function localTime(iso) {
      if (!iso) return "—";
      const p = Object.fromEntries(format.formatToParts(new Date(iso)).map((x) => [x.type, x.value]));
      return `${Number(p.year) + yearOffset}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
    };
  }

  async function api(method, url, body) {
    const response = await fetch(url, {
      method, credentials: "same-origin",
      headers: { "X-CSRFToken": csrfMeta ? csrfMeta.content : "", Accept: "application/json",
                 "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    return { ok: response.ok, status: response.status, data };
  }

  window.LprPage = { timeFormatter, api };
})();

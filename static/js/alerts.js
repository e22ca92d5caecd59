// The alerts page (/alerts, SPEC §11): acknowledge an alert from its row (POST /api/alerts/<id>/acknowledge),
// and, for admins, add, change and delete rules through /api/alert-rules with the page's CSRF token.
// The API checks the rule and answers 400 with `fields` naming every field at fault; each message is put
// under its field. Everything shown comes in as textContent, never as HTML.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("alerts-config").textContent);
  // The page's words, translated on the server (SPEC §13: the template's page_text). They are also
  // LPR.text's fallback: live.js may have read #page-text before it was in the page.
  const pageWords = JSON.parse(document.getElementById("page-text").textContent || "{}");
  const say = (key, values) => window.LPR.text(key, pageWords[key], values);
  const text = {};
  ["saved", "deleted", "not_saved", "failed", "confirm_delete", "ack_failed"].forEach((key) => { text[key] = say(key); });
  const $ = (id) => document.getElementById(id);

  const localTime = LprPage.timeFormatter(config.timezone);

  const api = LprPage.api;

  // --- acknowledging from the table -------------------------------------------------------------------
  document.querySelectorAll(".btn-ack-alert").forEach((button) => {
    button.addEventListener("click", async () => {
      button.disabled = true;
      const answer = await api("POST", `/api/alerts/${button.dataset.alertId}/acknowledge`);
      const cell = button.closest("td");
      if (!answer.ok) {
        button.disabled = false;
        button.title = `${text.ack_failed} (${answer.status})`;
        return;
      }
      const shown = document.createElement("span");
      shown.className = "small";
      const by = document.createElement("span");
      by.dataset.field = "by";
      by.textContent = answer.data.acknowledged_by || "";
      const at = document.createElement("span");
      at.className = "text-secondary";
      at.dataset.field = "at";
      at.textContent = localTime(answer.data.acknowledged_at);
      shown.append(by, " ", at);
      cell.replaceChildren(shown);
      cell.closest("tr").classList.remove("alert-open");
    });
  });

  // --- rules (admins) -----------------------------------------------------------------------------------
  const form = $("rule-form");
  if (!form) return;
  const rules = JSON.parse($("alert-rules-data").textContent);
  const title = $("rule-form-title");

  function list(value, separator) {
    return value.split(separator).map((item) => item.trim()).filter((item) => item.length);
  }

  function showCategories() {
    $("rule-categories-group").hidden = $("rule-trigger").value !== "blacklist";
  }

  function clearErrors() {
    form.querySelectorAll(".is-invalid").forEach((el) => el.classList.remove("is-invalid"));
    form.querySelectorAll("[data-error-for]").forEach((el) => { el.textContent = ""; el.classList.remove("d-block"); });
    $("rule-error-body").hidden = true;
    $("rule-status").textContent = "";
  }

  // The API's reasons are English (docs/api.md); a page in another language shows its own words for the
  // field, with the API's reason as the tooltip.
  const english = document.documentElement.lang === "en";
  function showErrors(fields) {
    Object.entries(fields).forEach(([name, reason]) => {
      const why = english ? reason : (pageWords[`rule_error_${name}`] || reason);
      const slot = form.querySelector(`[data-error-for="${name}"]`);
      if (!slot) {
        $("rule-error-body").hidden = false;
        $("rule-error-body").textContent = `${text.not_saved}: ${why}`;
        return;
      }
      slot.textContent = why;
      slot.title = reason;
      slot.classList.add("d-block");
      const input = form.querySelector(`[name="${name}"]`);
      if (input) input.classList.add("is-invalid");
    });
    if ($("rule-error-body").hidden) {
      $("rule-error-body").hidden = false;
      $("rule-error-body").textContent = text.not_saved;
    }
  }

  function body() {
    const trigger = $("rule-trigger").value;
    const after = $("rule-escalate-after").value.trim();
    return {
      trigger,
      hours: $("rule-hours").value.trim() || null,
      cameras: list($("rule-cameras").value, ","),
      // Categories narrow blacklist hits only: another trigger's alert has none, so none are sent.
      categories: trigger === "blacklist"
        ? Array.from(form.querySelectorAll('input[name="categories"]:checked')).map((box) => box.value) : [],
      channels: list($("rule-channels").value, /[\n,]/),
      escalate_after_minutes: after === "" ? null : (Number.isInteger(Number(after)) ? Number(after) : after),
      escalate_to: list($("rule-escalate-to").value, /[\n,]/),
      active: $("rule-active").checked,
      description: $("rule-description").value.trim() || null,
    };
  }

  function fill(rule) {
    clearErrors();
    $("rule-id").value = rule ? String(rule.id) : "";
    $("rule-trigger").value = rule ? rule.trigger : "blacklist";
    $("rule-hours").value = rule && rule.hours ? rule.hours : "";
    $("rule-cameras").value = rule ? rule.cameras.join(", ") : "";
    form.querySelectorAll('input[name="categories"]').forEach((box) => {
      box.checked = Boolean(rule && rule.categories.includes(box.value));
    });
    $("rule-channels").value = rule ? rule.channels.join("\n") : "";
    $("rule-escalate-after").value = rule && rule.escalate_after_minutes ? String(rule.escalate_after_minutes) : "";
    $("rule-escalate-to").value = rule ? rule.escalate_to.join("\n") : "";
    $("rule-active").checked = rule ? rule.active : true;
    $("rule-description").value = rule && rule.description ? rule.description : "";
    title.textContent = rule ? `${title.dataset.edit} #${rule.id}` : title.dataset.add;
    $("rule-cancel").hidden = !rule;
    showCategories();
  }

  $("rule-trigger").addEventListener("change", showCategories);
  $("rule-cancel").addEventListener("click", () => fill(null));
  showCategories();

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    const id = $("rule-id").value;
    $("rule-save").disabled = true;
    const answer = await api(id ? "PATCH" : "POST", id ? `/api/alert-rules/${id}` : "/api/alert-rules", body());
    $("rule-save").disabled = false;
    if (answer.ok) {
      $("rule-status").textContent = text.saved;
      window.location.hash = "rules";
      window.location.reload();
      return;
    }
    const error = answer.data && answer.data.error;
    if (error && error.fields) showErrors(error.fields);
    else showErrors({ body: `${text.failed} (${answer.status})${error ? ": " + error.message : ""}` });
  });

  document.querySelectorAll(".btn-edit-rule").forEach((button) => {
    button.addEventListener("click", () => {
      fill(rules.find((rule) => String(rule.id) === button.dataset.ruleId) || null);
      form.scrollIntoView({ behavior: "smooth", block: "start" });
      $("rule-trigger").focus({ preventScroll: true });
    });
  });

  document.querySelectorAll(".btn-delete-rule").forEach((button) => {
    button.addEventListener("click", async () => {
      if (!window.confirm(text.confirm_delete)) return;
      button.disabled = true;
      const answer = await api("DELETE", `/api/alert-rules/${button.dataset.ruleId}`);
      if (answer.ok) {
        window.location.reload();
      } else {
        button.disabled = false;
        button.title = `${text.failed} (${answer.status})`;
      }
    });
  });
})();

// Clinician console: refreshes the list of handoffs sent to you without reloading the page.
"use strict";

(function () {
  const POLL_MS = 3000;
  const root = document.getElementById("clinician-console");
  if (!root) return;

  function cell(text) {
    const td = document.createElement("td");
    td.textContent = text;
    return td;
  }

  function words(code) {
    return code ? code.replace(/_/g, " ") : "";
  }

  async function refresh() {
    let data;
    try {
      const response = await fetch(root.dataset.api, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (response.status === 401) {
        window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname));
        return;
      }
      if (!response.ok) return;
      data = await response.json();
    } catch (e) {
      return;
    }
    const body = document.querySelector("#my-handoffs tbody");
    body.replaceChildren();
    document.getElementById("handoffs-empty").hidden = data.handoffs.length > 0;
    for (const h of data.handoffs) {
      const row = document.createElement("tr");
      row.dataset.handoffId = h.id;
      const link = document.createElement("a");
      link.href = root.dataset.page + h.id;
      link.textContent = "#" + h.id;
      const first = document.createElement("td");
      first.append(link);
      const status = cell(words(h.status));
      status.className = "status status-" + h.status;
      row.append(first, cell(new Date(h.created_at).toLocaleString()), cell(h.helper_label), status, cell(h.callback_number || "unknown"), cell(h.outcome ? words(h.outcome) : "to record"));
      body.append(row);
    }
  }

  const timer = setInterval(refresh, POLL_MS);
  window.addEventListener("pagehide", () => clearInterval(timer));
})();

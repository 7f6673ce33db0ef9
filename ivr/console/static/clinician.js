// Clinician console: keeps the list of handoffs sent to you current without reloading the page;
// rows are updated in place, so a link that has keyboard focus keeps it.
"use strict";

(function () {
  const POLL_MS = 3000;
  const root = document.getElementById("clinician-console");
  if (!root) return;
  const LABELS = ["Handoff", "Received", "Helper type", "Status", "Callback number", "Outcome"];

  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  function newRow(h) {
    const row = document.createElement("tr");
    row.dataset.handoffId = h.id;
    for (const label of LABELS) {
      const td = document.createElement("td");
      td.dataset.label = label;
      row.append(td);
    }
    const link = document.createElement("a");
    link.href = root.dataset.page + h.id;
    link.textContent = "Handoff #" + h.id;
    row.cells[0].append(link);
    const time = document.createElement("time");
    time.dateTime = h.created_at;
    time.textContent = new Date(h.created_at).toLocaleString([], { weekday: "short", hour: "2-digit", minute: "2-digit" });
    row.cells[1].append(time);
    return row;
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
    document.getElementById("handoffs-empty").hidden = data.handoffs.length > 0;
    const ids = new Set(data.handoffs.map((h) => String(h.id)));
    for (const row of [...body.rows]) if (!ids.has(row.dataset.handoffId)) row.remove();
    let previous = null;
    for (const h of data.handoffs) {
      let row = body.querySelector('tr[data-handoff-id="' + h.id + '"]') || newRow(h);
      const expected = previous ? previous.nextSibling : body.firstChild;
      if (row !== expected) body.insertBefore(row, expected);
      previous = row;
      setText(row.cells[2], h.helper_label);
      setText(row.cells[3], h.status_words);
      row.cells[3].className = "status status-" + h.status;
      setText(row.cells[4], h.callback_number || "unknown");
      setText(row.cells[5], h.outcome_words || "to record");
    }
  }

  const timer = setInterval(refresh, POLL_MS);
  window.addEventListener("pagehide", () => clearInterval(timer));
})();

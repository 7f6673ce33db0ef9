// Open callbacks: refresh the figures in place every 15 s; when callbacks come or go, reload
// the page unless someone is typing in it (then say that the list changed).
"use strict";

(function () {
  const POLL_MS = 15000;
  const root = document.getElementById("open-callbacks");
  if (!root) return;

  function busy() {
    const active = document.activeElement;
    if (active && root.contains(active) && active.tagName !== "BODY") return true;
    return [...root.querySelectorAll("input[name=note]")].some((i) => i.value.trim());
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
    const rows = [...root.querySelectorAll("tbody tr[data-callback-id]")];
    const shown = rows.map((r) => r.dataset.callbackId).join(",");
    const now = data.callbacks.map((c) => String(c.id)).join(",");
    if (shown !== now) {
      if (!busy()) {
        window.location.reload();
        return;
      }
      const summary = document.getElementById("callbacks-summary");
      if (!summary.querySelector(".changed")) {
        const note = document.createElement("strong");
        note.className = "changed";
        note.textContent = " The list changed: reload to see it.";
        summary.append(note);
      }
    }
    for (const c of data.callbacks) {
      const row = root.querySelector('tr[data-callback-id="' + c.id + '"]');
      if (!row) continue;
      for (const cell of row.querySelectorAll("[data-field]")) {
        const value = c[cell.dataset.field];
        const text = value === null || value === undefined ? "nobody yet" : String(value);
        if (cell.textContent !== text) cell.textContent = text;
      }
    }
  }

  const timer = setInterval(refresh, POLL_MS);
  window.addEventListener("pagehide", () => clearInterval(timer));
})();

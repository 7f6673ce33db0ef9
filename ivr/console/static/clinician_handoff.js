// Clinician's handoff page: status, history and the call-taker's notes follow the call without
// a reload; only what changed is rewritten (the outcome form is never touched).
"use strict";

(function () {
  const POLL_MS = 3000;
  const root = document.getElementById("clinician-handoff");
  if (!root) return;

  function localTime(iso) {
    return new Date(iso).toLocaleString([], { weekday: "short", hour: "2-digit", minute: "2-digit" });
  }

  function syncList(list, lines, render) {
    const shown = [...list.children].map((li) => li.dataset.key || "");
    const keys = lines.map((l) => l.key);
    if (shown.join("\n") === keys.join("\n")) return;
    list.replaceChildren(...lines.map((l) => {
      const li = render(l);
      li.dataset.key = l.key;
      return li;
    }));
  }

  function line(iso, text) {
    const li = document.createElement("li");
    const time = document.createElement("time");
    time.dateTime = iso;
    time.textContent = localTime(iso);
    li.append(time, " " + text);
    return li;
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
    const status = document.getElementById("handoff-status");
    const words = data.status_words + (data.reason_words ? " (" + data.reason_words + ")" : "");
    if (status.textContent.trim() !== words) {
      status.textContent = words;
      status.className = "status status-" + data.status;
    }
    const history = document.getElementById("history");
    const story = data.story.map((s) => ({ ...s, key: s.at + " " + s.text }));
    if (history.children.length !== story.length) syncList(history, story, (s) => line(s.at, s.text));
    const notes = document.getElementById("call-notes");
    const items = data.notes.map((n) => ({ ...n, key: String(n.id) }));
    if (items.length && notes.querySelectorAll("time").length !== items.length) {
      syncList(notes, items, (n) => line(n.at, n.author + ": " + n.body));
    }
  }

  const timer = setInterval(refresh, POLL_MS);
  window.addEventListener("pagehide", () => clearInterval(timer));
})();

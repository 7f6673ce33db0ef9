// Call-taker console: polls the JSON API and changes only what changed, so keyboard focus stays
// where it is and the status region announces real changes only. No framework.
"use strict";

(function () {
  const POLL_MS = 1500;
  const root = document.getElementById("call-taker-console");
  if (!root) return;
  const api = root.dataset.api;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);
  let selected = null;
  let inFlight = false;
  let clockOffset = 0; // server time minus this browser's time, for the running timers
  let lastStatuses = null; // handoff id -> status words, to announce changes only
  let knownCalls = null; // call ids seen at the last poll, to announce new calls only

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "dataset") Object.assign(node.dataset, v);
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  }

  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  function setAttr(node, name, value) {
    if (value === null || value === undefined) {
      if (node.hasAttribute(name)) node.removeAttribute(name);
    } else if (node.getAttribute(name) !== String(value)) {
      node.setAttribute(name, value);
    }
  }

  async function call(method, path, body) {
    const options = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    if (method !== "GET") options.headers["X-CSRFToken"] = csrf;
    const response = await fetch(api + path, options);
    if (response.status === 401) {
      window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname));
      throw new Error("signed out");
    }
    const data = await response.json().catch(() => ({}));
    if (data.now) clockOffset = new Date(data.now).getTime() - Date.now();
    if (!response.ok) {
      const error = new Error(data.error || response.statusText);
      error.data = data;
      throw error;
    }
    return data;
  }

  function showError(message) {
    setText($("call-error"), message || "");
  }

  function announce(message) {
    $("announce").textContent = message;
  }

  function localTime(iso) {
    return iso ? new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" }) : "";
  }

  function elapsed(iso) {
    if (!iso) return "";
    const seconds = Math.max(0, Math.floor((Date.now() + clockOffset - new Date(iso).getTime()) / 1000));
    const h = Math.floor(seconds / 3600);
    const m = Math.floor((seconds % 3600) / 60);
    const s = seconds % 60;
    if (h) return h + " h " + String(m).padStart(2, "0") + " min";
    if (m) return m + " min " + String(s).padStart(2, "0") + " s";
    return s + " s";
  }

  // Running timers: any element with data-since shows the time elapsed, updated every second.
  function tickTimers() {
    for (const node of document.querySelectorAll("[data-since]")) {
      const prefix = node.dataset.prefix ? node.dataset.prefix + " " : "";
      setText(node, node.dataset.since ? prefix + elapsed(node.dataset.since) : "");
    }
  }

  // ------------------------------------------------------------------ live calls

  function renderCalls(calls) {
    const body = document.querySelector("#calls tbody");
    setText($("calls-status"), calls.length ? "" : "No live calls right now.");
    const ids = new Set(calls.map((c) => String(c.id)));
    for (const row of [...body.rows]) if (!ids.has(row.dataset.callId)) row.remove();
    let previous = null;
    for (const c of calls) {
      let row = body.querySelector('tr[data-call-id="' + c.id + '"]');
      if (!row) {
        row = el(
          "tr",
          { dataset: { callId: c.id } },
          el("td", { class: "call-label" }),
          el("td", {}, el("time", { class: "started" })),
          el("td", {}, el("span", { class: "status" }), " ", el("span", { class: "timer muted" })),
          el("td", { class: "taker" }),
          el("td", {}, el("button", { type: "button", class: "open-call", onclick: () => select(c.id) }, "Open")),
        );
      }
      const expectedNext = previous ? previous.nextSibling : body.firstChild;
      if (row !== expectedNext) body.insertBefore(row, expectedNext);
      previous = row;
      row.classList.toggle("selected", c.id === selected);
      setText(row.querySelector(".call-label"), c.label);
      const started = row.querySelector(".started");
      setAttr(started, "datetime", c.created_at);
      setText(started, localTime(c.created_at));
      const status = row.querySelector(".status");
      setAttr(status, "class", "status state-" + c.state);
      setText(status, c.state_words);
      const timer = row.querySelector(".timer");
      setAttr(timer, "data-since", c.state_since || "");
      setText(row.querySelector(".taker"), c.call_taker || "not yet");
      const open = row.querySelector(".open-call");
      setAttr(open, "aria-label", "Open call " + c.label);
    }
    if (knownCalls !== null) {
      const fresh = calls.filter((c) => !knownCalls.has(c.id));
      if (fresh.length) announce(fresh.length === 1 ? "New call: " + fresh[0].label : fresh.length + " new calls");
    }
    knownCalls = new Set(calls.map((c) => c.id));
    if (selected !== null && !calls.some((c) => c.id === selected)) {
      setText($("call-state"), "ended");
      setAttr($("call-timer"), "data-since", "");
    }
    tickTimers();
  }

  async function refreshCalls() {
    try {
      const data = await call("GET", "/calls");
      renderCalls(data.calls);
    } catch (e) {
      setText($("calls-status"), "Cannot reach Bridgeline: " + e.message);
    }
  }

  // ------------------------------------------------------------- selected call

  function select(id) {
    selected = id;
    lastStatuses = null;
    $("active").hidden = false;
    $("selected-call").hidden = false;
    $("tree").reset();
    $("eligibility").replaceChildren();
    $("handoffs").replaceChildren();
    $("notes").replaceChildren();
    $("confirm-second").hidden = true;
    for (const row of document.querySelectorAll("#calls tbody tr")) {
      row.classList.toggle("selected", Number(row.dataset.callId) === id);
    }
    showError("");
    delete $("leave-call").dataset.leaving;
    setText($("leave-hint"), "Possible once a helper is connected.");
    refreshSelected(true).then(evaluate);
    $("active").scrollIntoView({ block: "start" });
    $("active-title").setAttribute("tabindex", "-1");
    $("active-title").focus();
  }

  function handoffTitle(h) {
    return h.helper_label + (h.member ? " · " + h.member : "");
  }

  function renderActive(call, handoffs) {
    setText($("selected-label"), call.label + (call.ended ? " (ended)" : ""));
    const state = $("call-state");
    setAttr(state, "class", "state state-" + call.state);
    setText(state, call.state_words);
    setAttr($("call-timer"), "data-since", call.state_since || "");
    // The handoff that matters now: one still under way or connected, else the newest.
    const box = $("active-handoff");
    const current = handoffs.find((h) => h.timer) || null;
    const wanted = current ? String(current.id) : "";
    if (box.dataset.handoffId !== wanted) {
      box.replaceChildren();
      box.dataset.handoffId = wanted;
      if (current) {
        box.append(
          el("span", { class: "active-title" }),
          " ",
          el("span", { class: "status handoff-status" }),
          " ",
          el("span", { class: "timer" }),
        );
      }
    }
    if (!current) return;
    setText(box.querySelector(".active-title"), handoffTitle(current) + ":");
    const status = box.querySelector(".handoff-status");
    setAttr(status, "class", "status handoff-status status-" + current.status);
    setText(status, current.status_words);
    const timer = box.querySelector(".timer");
    setAttr(timer, "data-since", current.timer.since);
    setAttr(timer, "data-prefix", "for");
    let cancel = box.querySelector("button.cancel-handoff");
    if (current.cancellable && !cancel) {
      cancel = el(
        "button",
        { type: "button", class: "cancel-handoff", onclick: (event) => cancelHandoff(current.id, event.currentTarget) },
        "Cancel this call to " + (current.member || "the " + current.helper_label),
      );
      box.append(" ", cancel);
    } else if (cancel && !current.cancellable) {
      const hadFocus = document.activeElement === cancel;
      cancel.remove();
      if (hadFocus) $("active-title").focus();
    } else if (cancel) {
      setText(cancel, "Cancel this call to " + (current.member || "the " + current.helper_label));
    }
  }

  function renderHandoffs(handoffs) {
    const list = $("handoffs");
    const ids = new Set(handoffs.map((h) => String(h.id)));
    for (const item of [...list.children]) if (!ids.has(item.dataset.handoffId)) item.remove();
    let previous = null;
    for (const h of handoffs) {
      let item = list.querySelector('li[data-handoff-id="' + h.id + '"]');
      if (!item) {
        item = el(
          "li",
          { dataset: { handoffId: h.id }, class: "handoff" },
          el("p", { class: "handoff-head" }, el("span", { class: "who" }), " ", el("span", { class: "status handoff-status" }), el("span", { class: "why muted" }), el("span", { class: "given muted" })),
          el("ol", { class: "events" }),
        );
      }
      const expectedNext = previous ? previous.nextSibling : list.firstChild;
      if (item !== expectedNext) list.insertBefore(item, expectedNext);
      previous = item;
      setText(item.querySelector(".who"), handoffTitle(h) + ":");
      const status = item.querySelector(".handoff-status");
      setAttr(status, "class", "status handoff-status status-" + h.status);
      setText(status, h.status_words);
      setText(item.querySelector(".why"), h.reason_words ? " (" + h.reason_words + ")" : "");
      setText(item.querySelector(".given"), " · reason given: " + h.reason_given);
      const steps = item.querySelector("ol.events");
      const lines = h.story.map((s) => localTime(s.at) + " " + s.text);
      const shown = [...steps.children].map((li) => li.textContent);
      if (lines.join("\n") !== shown.join("\n")) {
        // The history only grows: add the new lines; rebuild only if an older one changed.
        const same = shown.every((text, i) => text === lines[i]);
        if (!same) steps.replaceChildren();
        for (let i = same ? shown.length : 0; i < h.story.length; i++) {
          const s = h.story[i];
          steps.append(el("li", { class: "event-" + s.kind }, el("time", { datetime: s.at }, localTime(s.at)), " " + s.text));
        }
      }
    }
  }

  function announceChanges(handoffs) {
    const now = new Map(handoffs.map((h) => [h.id, h.status_words]));
    if (lastStatuses !== null) {
      const changed = handoffs.filter((h) => lastStatuses.get(h.id) !== h.status_words);
      if (changed.length) announce(changed.map((h) => handoffTitle(h) + ": " + h.status_words).join(". "));
    }
    lastStatuses = now;
  }

  function renderNotes(notes) {
    const list = $("notes");
    const lines = notes.map((n) => localTime(n.at) + " " + (n.author || n.staff_id) + ": " + n.body);
    const shown = [...list.children].map((li) => li.textContent);
    if (lines.join("\n") === shown.join("\n")) return;
    list.replaceChildren(...notes.map((n, i) => el("li", { class: "note" }, lines[i])));
  }

  function prefillAnswers(answers) {
    if (document.querySelector("#tree input:checked")) return; // the call-taker started answering
    for (const [question, yes] of Object.entries(answers || {})) {
      const input = document.querySelector('#tree input[name="' + question + '"][value="' + (yes ? "yes" : "no") + '"]');
      if (input) input.checked = true;
    }
  }

  async function refreshSelected(first) {
    if (selected === null) return;
    const id = selected;
    try {
      const data = await call("GET", "/calls/" + id);
      if (id !== selected) return;
      setText($("selected-callback"), data.call.callback_number || "unknown");
      if (first) prefillAnswers(data.call.answers);
      renderActive(data.call, data.handoffs);
      renderHandoffs(data.handoffs);
      announceChanges(data.handoffs);
      renderNotes(data.notes);
      const leave = $("leave-call");
      if (!leave.dataset.leaving) leave.disabled = !data.call.can_leave;
      if (!leave.dataset.leaving) setText($("leave-hint"), data.call.can_leave ? "The helper has the caller: you may leave." : "Possible once a helper is connected.");
      tickTimers();
    } catch (e) {
      showError(e.message);
    }
  }

  // ------------------------------------------------------------ decision tree

  function answers() {
    const out = {};
    for (const set of document.querySelectorAll("#tree fieldset.question")) {
      const checked = set.querySelector("input:checked");
      if (checked) out[set.dataset.question] = checked.value === "yes";
    }
    return out;
  }

  let lastOffers = "";

  async function evaluate() {
    const box = $("eligibility");
    let data;
    try {
      data = await call("POST", "/eligibility", { answers: answers() });
    } catch (e) {
      showError(e.message);
      return;
    }
    for (const set of document.querySelectorAll("#tree fieldset.question")) {
      set.classList.toggle("next", set.dataset.question === data.next_question);
    }
    const key = JSON.stringify(data);
    if (key === lastOffers && box.childElementCount) return; // nothing changed: keep focus
    lastOffers = key;
    box.replaceChildren();
    if (!data.decided) {
      box.append(el("p", { class: "muted" }, "Answer the questions to see who can help."));
      return;
    }
    if (!data.allowed.length) {
      box.append(el("p", { class: "error", id: "not-eligible" }, "No diversion: " + (data.reason_words || data.reason.replace(/_/g, " ")) + ". Send the law / EMS route."));
      return;
    }
    for (const offer of data.offers) {
      const group = el("div", { class: "offer", dataset: { helperType: offer.helper_type } });
      if (offer.available) {
        group.append(
          el(
            "button",
            { type: "button", class: "helper", dataset: { helperType: offer.helper_type }, onclick: () => startHandoff(offer.helper_type) },
            "Conference in " + offer.label,
          ),
          el("span", { class: "muted" }, " on duty: " + offer.on_duty.map((m) => m.name).join(", ")),
        );
      } else {
        group.append(
          el("strong", {}, offer.label),
          el("span", { class: "muted" }, ": no one on duty" + (offer.next_change ? " until " + new Date(offer.next_change).toLocaleString() : "") + "."),
        );
      }
      box.append(group);
    }
  }

  function requestId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 12);
  }

  function lockHelperButtons(locked) {
    for (const b of document.querySelectorAll("button.helper")) {
      b.disabled = locked;
      b.setAttribute("aria-busy", locked ? "true" : "false");
    }
  }

  // One request per press: the buttons lock until the server answers, and the request carries
  // an id so a retried request gets the same handoff (the server also allows one at a time).
  async function startHandoff(helperType, confirmSecond) {
    if (inFlight) return;
    inFlight = true;
    showError("");
    $("confirm-second").hidden = true;
    lockHelperButtons(true);
    try {
      await call("POST", "/calls/" + selected + "/handoffs", {
        helper_type: helperType,
        answers: answers(),
        reason: $("handoff-reason").value,
        request_id: requestId(),
        confirm_second_helper: Boolean(confirmSecond),
      });
    } catch (e) {
      if (e.data && e.data.conflict === "needs_confirmation") askSecondHelper(helperType, e.message);
      else showError(e.message);
    } finally {
      inFlight = false;
      lockHelperButtons(false);
    }
    refreshSelected();
  }

  function askSecondHelper(helperType, message) {
    const box = $("confirm-second");
    setText($("confirm-second-text"), message);
    box.dataset.helperType = helperType;
    box.hidden = false;
    $("confirm-second-yes").focus();
  }

  async function cancelHandoff(handoffId, button) {
    button.disabled = true;
    showError("");
    try {
      await call("POST", "/calls/" + selected + "/handoffs/" + handoffId + "/cancel", {});
    } catch (e) {
      showError(e.message);
      button.disabled = false;
    }
    refreshSelected();
  }

  // ------------------------------------------------------------ notes, leave

  $("tree").addEventListener("change", evaluate);
  $("confirm-second-yes").addEventListener("click", () => {
    startHandoff($("confirm-second").dataset.helperType, true);
  });
  $("confirm-second-no").addEventListener("click", () => {
    $("confirm-second").hidden = true;
  });
  $("note-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const field = $("note-body");
    const button = $("save-note");
    button.disabled = true;
    try {
      await call("POST", "/calls/" + selected + "/notes", { body: field.value });
      field.value = "";
    } catch (e) {
      showError(e.message);
    } finally {
      button.disabled = false;
    }
    refreshSelected();
  });
  $("leave-call").addEventListener("click", async () => {
    const leave = $("leave-call");
    leave.disabled = true;
    leave.dataset.leaving = "1";
    setText($("leave-hint"), "Leaving the call…");
    try {
      await call("POST", "/calls/" + selected + "/leave", {});
      setText($("leave-hint"), "You are being taken out of the call; the helper stays with the caller.");
      announce("Leaving the call.");
    } catch (e) {
      showError(e.message);
      delete leave.dataset.leaving;
      leave.disabled = false;
      setText($("leave-hint"), "");
    }
    refreshSelected();
  });

  refreshCalls();
  const polling = setInterval(() => {
    refreshCalls();
    refreshSelected();
  }, POLL_MS);
  const ticking = setInterval(tickTimers, 1000);
  window.addEventListener("pagehide", () => {
    clearInterval(polling);
    clearInterval(ticking);
  });
})();

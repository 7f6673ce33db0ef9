// Call-taker console: polls the JSON API for live calls and handoff progress; no framework.
"use strict";

(function () {
  const POLL_MS = 1500;
  const root = document.getElementById("call-taker-console");
  if (!root) return;
  const api = root.dataset.api;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  let selected = null;
  let polling = null;
  let inFlight = false;
  const CANCELLABLE = new Set(["requested", "dialing", "ringing", "screening", "falling_back"]);

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
    if (!response.ok) {
      const error = new Error(data.error || response.statusText);
      error.data = data;
      throw error;
    }
    return data;
  }

  function showError(message) {
    document.getElementById("call-error").textContent = message || "";
  }

  function time(iso) {
    return iso ? new Date(iso).toLocaleTimeString() : "";
  }

  function words(code) {
    return code ? code.replace(/_/g, " ") : "";
  }

  // ------------------------------------------------------------------ live calls

  function renderCalls(calls) {
    const body = document.querySelector("#calls tbody");
    body.replaceChildren();
    document.getElementById("calls-status").textContent = calls.length
      ? ""
      : "No live calls right now.";
    for (const c of calls) {
      const row = el(
        "tr",
        { dataset: { callId: c.id }, class: c.id === selected ? "selected" : "" },
        el("td", {}, c.label),
        el("td", {}, time(c.created_at)),
        el("td", { class: "status status-" + c.status }, words(c.status)),
        el("td", {}, c.call_taker_staff_id || "—"),
        el("td", {}, el("button", { type: "button", class: "open-call", onclick: () => select(c.id) }, "Open")),
      );
      body.append(row);
    }
    if (selected !== null && !calls.some((c) => c.id === selected)) {
      // The call ended: keep its detail on screen, marked as such, until another is opened.
      document.getElementById("selected-label").textContent += " (ended)";
    }
  }

  async function refreshCalls() {
    try {
      const data = await call("GET", "/calls");
      renderCalls(data.calls);
    } catch (e) {
      document.getElementById("calls-status").textContent = "Cannot reach Bridgeline: " + e.message;
    }
  }

  // ------------------------------------------------------------- selected call

  function select(id) {
    selected = id;
    document.getElementById("selected-call").hidden = false;
    document.getElementById("tree").reset();
    document.getElementById("eligibility").replaceChildren();
    for (const row of document.querySelectorAll("#calls tbody tr")) {
      row.classList.toggle("selected", Number(row.dataset.callId) === id);
    }
    showError("");
    refreshSelected();
    evaluate();
  }

  function renderHandoffs(handoffs) {
    const list = document.getElementById("handoffs");
    list.replaceChildren();
    for (const h of handoffs) {
      const steps = el("ul", { class: "events" });
      for (const e of h.events) {
        steps.append(
          el("li", {}, time(e.occurred_at) + " " + words(e.event) + (e.member ? " — " + e.member : "") + (e.reason ? " (" + words(e.reason) + ")" : "")),
        );
      }
      list.append(
        el(
          "li",
          { dataset: { handoffId: h.id }, class: "handoff" },
          words(h.helper_type) + (h.member ? " · " + h.member : "") + ": ",
          el("span", { class: "status handoff-status status-" + h.status }, words(h.status)),
          h.reason_code ? el("span", { class: "muted" }, " (" + words(h.reason_code) + ")") : "",
          CANCELLABLE.has(h.status)
            ? el("button", { type: "button", class: "cancel-handoff", onclick: (event) => cancelHandoff(h.id, event.currentTarget) }, "Cancel this call to " + (h.member || h.helper_label))
            : "",
          steps,
        ),
      );
    }
  }

  function renderNotes(notes) {
    const list = document.getElementById("notes");
    list.replaceChildren();
    for (const n of notes) {
      list.append(el("li", { class: "note" }, time(n.at) + " " + n.staff_id + ": " + n.body));
    }
  }

  async function refreshSelected() {
    if (selected === null) return;
    try {
      const data = await call("GET", "/calls/" + selected);
      document.getElementById("selected-label").textContent = data.call.label + (data.call.ended ? " (ended)" : "");
      document.getElementById("selected-callback").textContent = data.call.callback_number || "unknown";
      renderHandoffs(data.handoffs);
      renderNotes(data.notes);
      document.getElementById("leave-call").disabled = !data.call.can_leave;
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

  async function evaluate() {
    const box = document.getElementById("eligibility");
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
    box.replaceChildren();
    if (!data.decided) {
      box.append(el("p", { class: "muted" }, "Answer the questions to see who can help."));
      return;
    }
    if (!data.allowed.length) {
      box.append(el("p", { class: "error", id: "not-eligible" }, "No diversion: " + words(data.reason) + ". Send the law / EMS route."));
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
    document.getElementById("confirm-second").hidden = true;
    lockHelperButtons(true);
    try {
      await call("POST", "/calls/" + selected + "/handoffs", {
        helper_type: helperType,
        answers: answers(),
        reason: document.getElementById("handoff-reason").value,
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
    const box = document.getElementById("confirm-second");
    document.getElementById("confirm-second-text").textContent = message;
    box.dataset.helperType = helperType;
    box.hidden = false;
    document.getElementById("confirm-second-yes").focus();
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

  document.getElementById("tree").addEventListener("change", evaluate);
  document.getElementById("confirm-second-yes").addEventListener("click", () => {
    startHandoff(document.getElementById("confirm-second").dataset.helperType, true);
  });
  document.getElementById("confirm-second-no").addEventListener("click", () => {
    document.getElementById("confirm-second").hidden = true;
  });
  document.getElementById("note-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const field = document.getElementById("note-body");
    try {
      await call("POST", "/calls/" + selected + "/notes", { body: field.value });
      field.value = "";
    } catch (e) {
      showError(e.message);
    }
    refreshSelected();
  });
  document.getElementById("leave-call").addEventListener("click", async () => {
    try {
      await call("POST", "/calls/" + selected + "/leave", {});
    } catch (e) {
      showError(e.message);
    }
    refreshSelected();
  });

  refreshCalls();
  polling = setInterval(() => {
    refreshCalls();
    refreshSelected();
  }, POLL_MS);
  window.addEventListener("pagehide", () => clearInterval(polling));
})();

// The live pages keep themselves current: ask about once a second whether anything changed
// (If-None-Match with the last ETag: an empty 304 while nothing did), swap only the parts
// that changed, keep keyboard focus, and tick elapsed times locally between changes.
(function () {
  "use strict";
  var root = document.getElementById("live");
  if (!root) { return; }
  var url = root.getAttribute("data-poll-url");
  var version = root.getAttribute("data-version");
  var pollMs = parseInt(root.getAttribute("data-poll-ms"), 10) || 1000;
  var skew = Date.parse(root.getAttribute("data-now")) - Date.now();
  var status = document.getElementById("live-connection");
  var announce = document.getElementById("live-announce");
  var lastSummary = "";

  function words(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    if (seconds < 60) { return seconds + " s"; }
    var minutes = Math.floor(seconds / 60);
    seconds = seconds % 60;
    if (minutes < 60) { return minutes + " min " + (seconds < 10 ? "0" : "") + seconds + " s"; }
    var hours = Math.floor(minutes / 60);
    minutes = minutes % 60;
    if (hours < 48) { return hours + " h " + (minutes < 10 ? "0" : "") + minutes + " min"; }
    return Math.floor(hours / 24) + " days " + (hours % 24) + " h";
  }

  function tick() {
    var now = Date.now() + skew;
    var items = document.querySelectorAll("[data-since]");
    for (var i = 0; i < items.length; i++) {
      var since = Date.parse(items[i].getAttribute("data-since"));
      if (!isNaN(since)) { items[i].textContent = words((now - since) / 1000); }
    }
  }

  function replace(id, html) {
    var part = document.getElementById(id);
    if (!part || part.innerHTML === html) { return; }
    var active = document.activeElement;
    var key = active && part.contains(active) ? active.getAttribute("data-focus-key") : null;
    part.innerHTML = html;
    if (key) {
      var again = part.querySelector('[data-focus-key="' + key + '"]');
      if (again) { again.focus(); }
    }
  }

  function apply(data) {
    version = data.version;
    skew = Date.parse(data.now) - Date.now();
    var names = Object.keys(data.sections);
    for (var i = 0; i < names.length; i++) {
      replace("live-" + names[i], data.sections[names[i]]);
    }
    if (data.summary && data.summary !== lastSummary) {
      lastSummary = data.summary;
      announce.textContent = data.summary;
    }
    tick();
  }

  function say(text) {
    if (status.textContent !== text) { status.textContent = text; }
  }

  function poll() {
    var request = new XMLHttpRequest();
    request.open("GET", url);
    request.setRequestHeader("Accept", "application/json");
    request.setRequestHeader("If-None-Match", '"' + version + '"');
    request.onload = function () {
      if (request.status === 200) {
        apply(JSON.parse(request.responseText));
        say("Updates by itself every second.");
      } else if (request.status === 304) {
        say("Updates by itself every second.");
      } else if (request.status === 401) {
        say("You are signed out: reload the page to sign in again.");
        return;
      } else {
        say("Could not update (the server answered " + request.status + "); trying again.");
      }
      window.setTimeout(poll, pollMs);
    };
    request.onerror = function () {
      say("Connection lost; trying again.");
      window.setTimeout(poll, pollMs * 3);
    };
    request.send();
  }

  window.setInterval(tick, 1000);
  window.setTimeout(poll, pollMs);
})();

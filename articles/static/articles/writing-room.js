// The writing room on the article page: live word count and reading time, and autosave.
// Reading time as the server counts it (articles/html.py): 230 words a minute, plus 12 s for
// the first image, a second less for each next one, 3 s from the tenth on; at least a minute.
// Autosave posts the title, standfirst and body every few seconds when they changed, and when
// the page is hidden or left, with the version the page opened; a 409 pauses it (someone else
// saved, or the piece is past review) and says so.
(function () {
  "use strict";
  var room = document.getElementById("writing-room");
  if (!room) { return; }
  var form = room.closest("form");
  var version = room.querySelector("input[name=opened_version]");
  var status = room.querySelector("[data-autosave-status]");
  var WORD = /[\p{L}\p{N}_]+(?:['\u2019-][\p{L}\p{N}_]+)*/gu;
  var url = room.dataset.autosaveUrl;
  var seconds = Number(room.dataset.autosaveSeconds || 5);
  var saved = null, inFlight = false, paused = false;

  function field(name) { return form.querySelector("[name=" + name + "]"); }

  function snapshot() {
    var values = {};
    ["title", "standfirst", "body"].forEach(function (name) {
      var input = field(name);
      if (input) { values[name] = input.value; }
    });
    return values;
  }

  function countBody() {
    var body = field("body");
    if (!body) { return; }
    var page = new DOMParser().parseFromString(body.value, "text/html");
    var words = (page.body.textContent.match(WORD) || []).length;
    var images = page.body.querySelectorAll("img").length, imageSeconds = 0;
    for (var index = 0; index < images; index++) { imageSeconds += Math.max(12 - index, 3); }
    var minutes = Math.max(1, Math.ceil((words * 60 / 230 + imageSeconds) / 60));
    room.querySelector("[data-count=words]").textContent = words.toLocaleString();
    room.querySelector("[data-count=minutes]").textContent = minutes;
  }

  function say(text, isError) {
    status.textContent = text;
    status.classList.toggle("is-error", Boolean(isError));
  }

  function changed(values) {
    return JSON.stringify(values) !== JSON.stringify(saved);
  }

  function autosave(leaving) {
    if (!url || paused || inFlight) { return; }
    var values = snapshot();
    if (!changed(values)) { return; }
    var data = new FormData();
    Object.keys(values).forEach(function (name) { data.append(name, values[name]); });
    data.append("opened_version", version.value);
    data.append("csrfmiddlewaretoken", field("csrfmiddlewaretoken").value);
    inFlight = true;
    say("Saving…");
    fetch(url, { method: "POST", body: data, credentials: "same-origin", keepalive: Boolean(leaving) })
      .then(function (response) {
        return response.json().then(function (answer) { return { ok: response.ok, answer: answer }; });
      })
      .then(function (result) {
        inFlight = false;
        if (!result.ok) {
          paused = true;
          say(result.answer.error || "Not saved.", true);
          return;
        }
        saved = values;
        version.value = result.answer.version;
        var at = new Date(result.answer.saved_at);
        say("Draft saved at " + at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" }));
        room.dataset.autosaved = String(Number(room.dataset.autosaved || 0) + 1);
      })
      .catch(function () {
        inFlight = false;
        say("Not saved: the connection failed. Trying again shortly.", true);
      });
  }

  var counting = null;
  function edited() {
    clearTimeout(counting);
    counting = setTimeout(countBody, 150);
  }
  form.addEventListener("input", edited);
  form.addEventListener("keyup", edited);
  // The editor writes its HTML into the hidden textarea as it changes; look at it now and then too.
  setInterval(countBody, 2000);
  countBody();

  if (url) {
    saved = snapshot();
    setInterval(function () { autosave(false); }, seconds * 1000);
    // The Save and workflow buttons send the whole form: autosave stands aside.
    form.addEventListener("submit", function () { paused = true; });
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "hidden") { autosave(true); }
    });
    window.addEventListener("pagehide", function () { autosave(true); });
  }
})();

// lookout dashboard: live refresh on server-sent events, and incident actions with a bearer token kept in this
// browser's localStorage (sent as an Authorization header, never a cookie: there is no ambient credential for a
// cross-site request to ride on).
//
// The token goes with every request the page makes — refreshes, the event stream, actions — so the dashboard
// works with public_reads = false. The event stream is read with fetch() rather than EventSource because
// EventSource cannot send headers, and the alternative, the token in the URL, would land in access logs, proxies
// and the browser's history.
(function () {
  "use strict";
  function token() { return localStorage.getItem("lookoutToken"); }
  function withToken(headers) {
    var t = token();
    if (t) headers["Authorization"] = "Bearer " + t;
    return headers;
  }
  function load() {
    return fetch(location.pathname, { headers: withToken({ "Accept": "text/html" }) });
  }
  function swap(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var fresh = doc.getElementById("main");
    if (fresh) document.getElementById("main").replaceWith(fresh);
    if (doc.title) document.title = doc.title;
    if (doc.body) document.body.dataset.live = doc.body.dataset.live;
  }

  // "12 s ago" stays true between refreshes (the absolute time, UTC, is the title).
  function ago(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return s + " s ago";
    if (s < 3600) return Math.floor(s / 60) + " min ago";
    if (s < 86400) return Math.floor(s / 3600) + " h ago";
    return Math.floor(s / 86400) + " d ago";
  }
  setInterval(function () {
    document.querySelectorAll("time[datetime]").forEach(function (t) {
      var at = Date.parse(t.getAttribute("datetime"));
      if (!isNaN(at)) t.textContent = ago(Date.now() - at);
    });
  }, 5000);

  // The store is read at most once a second whatever the number of pages; a page asks at most every two seconds.
  var refreshing = false;
  function refresh() {
    if (refreshing) return;
    refreshing = true;
    setTimeout(function () {
      load()
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) { if (html) swap(html); })
        .catch(function () {})
        .finally(function () { refreshing = false; });
    }, 2000);
  }

  // Server-sent events over fetch: any "data:" line means something changed.
  var listening = false;
  function listen() {
    if (listening || document.body.dataset.live !== "true" || !window.ReadableStream) return;
    listening = true;
    fetch("/events", { headers: withToken({ "Accept": "text/event-stream" }) })
      .then(function (r) {
        if (!r.ok || !r.body) throw new Error("events: " + r.status);
        var reader = r.body.getReader(), decoder = new TextDecoder(), buffer = "";
        function pump() {
          return reader.read().then(function (chunk) {
            if (chunk.done) throw new Error("events ended");
            buffer += decoder.decode(chunk.value, { stream: true });
            var messages = buffer.split("\n\n");
            buffer = messages.pop();
            if (messages.some(function (m) { return /^data:/m.test(m); })) refresh();
            return pump();
          });
        }
        return pump();
      })
      .catch(function () {
        listening = false;
        setTimeout(listen, 3000);
      });
  }

  // Reads are private and this page came without data: load it with the stored token, or ask for one.
  function signIn(form) {
    var result = document.getElementById("sign-in-result");
    function attempt() {
      load().then(function (r) {
        if (r.ok) return r.text().then(function (html) { swap(html); listen(); });
        if (r.status === 401 || r.status === 403) localStorage.removeItem("lookoutToken");
        form.hidden = false;
        if (result) result.textContent = token() === null && r.status === 403 ? "That token was refused." : "";
      }).catch(function () { form.hidden = false; });
    }
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      localStorage.setItem("lookoutToken", form.elements.token.value);
      attempt();
    });
    if (token()) attempt(); else form.hidden = false;
  }

  var form = document.getElementById("sign-in");
  if (form) signIn(form); else listen();

  document.addEventListener("click", function (ev) {
    var b = ev.target.closest("button[data-action]");
    if (!b) return;
    var action = b.dataset.action, id = b.dataset.id, body = {};
    var t = token() || prompt("API token (from [web] tokens_env)");
    if (!t) return;
    // Pause and Resume on the dashboard name a target; the incident page's buttons name an incident.
    var url = b.dataset.target
      ? "/api/v1/targets/" + encodeURIComponent(b.dataset.target) + "/" + action
      : "/api/v1/incidents/" + encodeURIComponent(id) + "/" + action;
    if (action === "note") { body.text = prompt("Note"); if (!body.text) return; }
    if (action === "resolve") { body.note = prompt("Resolution note (optional)") || undefined; }
    var by = localStorage.getItem("lookoutName") || prompt("Your name");
    if (by) { body.by = by; localStorage.setItem("lookoutName", by); }
    fetch(url, {
      method: "POST",
      headers: { "Authorization": "Bearer " + t, "Content-Type": "application/json" },
      body: JSON.stringify(body)
    }).then(function (r) {
      if (r.status === 401 || r.status === 403) { localStorage.removeItem("lookoutToken"); }
      else { localStorage.setItem("lookoutToken", t); }
      var said = function (j) {
        document.getElementById("action-result").textContent = r.ok ? action + ": done" : ((j && j.error) || r.status);
        if (r.ok) refresh();
      };
      // A resume answers 204, without a body.
      return r.status === 204 ? said(null) : r.json().then(said);
    });
  });
})();

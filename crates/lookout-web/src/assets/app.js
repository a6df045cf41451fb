// lookout dashboard: live refresh on server-sent events, and incident actions with a bearer token kept in this
// browser's localStorage (sent as an Authorization header, never a cookie: there is no ambient credential for a
// cross-site request to ride on).
(function () {
  "use strict";
  // Every check sends an event; rebuilding the page reads a day of results per target, so at most one refresh
  // every two seconds.
  var refreshing = false;
  function refresh() {
    if (refreshing) return;
    refreshing = true;
    setTimeout(function () {
      fetch(location.pathname, { headers: { "Accept": "text/html" } })
        .then(function (r) { return r.text(); })
        .then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          var fresh = doc.getElementById("main");
          if (fresh) document.getElementById("main").replaceWith(fresh);
        })
        .finally(function () { refreshing = false; });
    }, 2000);
  }
  if (document.body.dataset.live === "true" && window.EventSource) {
    var events = new EventSource("/events");
    events.onmessage = refresh;
  }
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest("button[data-action]");
    if (!b) return;
    var action = b.dataset.action, id = b.dataset.id, body = {};
    var token = localStorage.getItem("lookoutToken") || prompt("API token (from [web] tokens_env)");
    if (!token) return;
    if (action === "note") { body.text = prompt("Note"); if (!body.text) return; }
    if (action === "resolve") { body.note = prompt("Resolution note (optional)") || undefined; }
    var by = localStorage.getItem("lookoutName") || prompt("Your name");
    if (by) { body.by = by; localStorage.setItem("lookoutName", by); }
    fetch("/api/v1/incidents/" + encodeURIComponent(id) + "/" + action, {
      method: "POST",
      headers: { "Authorization": "Bearer " + token, "Content-Type": "application/json" },
      body: JSON.stringify(body)
    }).then(function (r) {
      if (r.status === 401 || r.status === 403) { localStorage.removeItem("lookoutToken"); }
      else { localStorage.setItem("lookoutToken", token); }
      return r.json().then(function (j) {
        document.getElementById("action-result").textContent = r.ok ? action + ": done" : (j.error || r.status);
        if (r.ok) refresh();
      });
    });
  });
})();

// Tresor console: the only script. It shows times in the viewer's time
// zone, asks before destructive actions, and refreshes a page whose jobs
// are running. It never sees a token: the session is an HttpOnly cookie.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("time[datetime]").forEach(function (el) {
    var d = new Date(el.getAttribute("datetime"));
    if (isNaN(d)) {
      return;
    }
    try {
      var local = d.toLocaleString(undefined, {
        year: "numeric", month: "short", day: "numeric",
        hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short"
      });
      el.title = el.textContent;
      el.textContent = local;
    } catch (e) {
      // Keep the server's UTC text.
    }
  });
  document.querySelectorAll("form.confirm").forEach(function (f) {
    f.addEventListener("submit", function (e) {
      if (!window.confirm(f.getAttribute("data-confirm") || "Are you sure?")) {
        e.preventDefault();
      }
    });
  });
  var r = document.querySelector("[data-refresh]");
  if (r) {
    var s = parseInt(r.getAttribute("data-refresh"), 10) || 2;
    setTimeout(function () { window.location.reload(); }, s * 1000);
  }
});

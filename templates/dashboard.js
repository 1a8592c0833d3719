// Keyboard paging and the 10-minute auto refresh (it posts the page's hidden refresh form,
// which carries the CSRF token). Reads its URLs from data attributes the server escaped,
// so no server text is ever evaluated as script.
(function () {
  "use strict";
  var data = document.body.dataset;
  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
    var target = event.target;
    if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) return;
    if (event.key === "ArrowLeft" && data.prevUrl) window.location.href = data.prevUrl;
    if (event.key === "ArrowRight" && data.nextUrl) window.location.href = data.nextUrl;
  });
  var delay = parseInt(data.refreshMs || "0", 10);
  var refresh = document.getElementById("auto-refresh");
  if (refresh && delay > 0) {
    window.setTimeout(function () { refresh.submit(); }, delay);
  }
})();

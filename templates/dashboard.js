// Keyboard paging and the 10-minute auto refresh (it posts the page's hidden refresh form,
// which carries the CSRF token). Reads its URLs from data attributes the server escaped,
// so no server text is ever evaluated as script.
(function () {
  "use strict";
  var data = document.body.dataset;
  // The arrow that points back goes to the previous page: left in a left-to-right page,
  // right in a right-to-left one.
  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
    var target = event.target;
    if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) return;
    var rtl = (document.documentElement.dir || document.dir) === "rtl";
    var back = rtl ? "ArrowRight" : "ArrowLeft";
    var forward = rtl ? "ArrowLeft" : "ArrowRight";
    // A box that scrolls sideways (the transaction table) keeps its arrows for that.
    var box = target && target.closest ? target.closest(".table-scroll, .chart-wrap, .table-wrap") : null;
    if (box && box.scrollWidth > box.clientWidth) return;
    if (event.key === back && data.prevUrl) window.location.href = data.prevUrl;
    if (event.key === forward && data.nextUrl) window.location.href = data.nextUrl;
  });
  var delay = parseInt(data.refreshMs || "0", 10);
  var refresh = document.getElementById("auto-refresh");
  if (refresh && delay > 0) {
    window.setTimeout(function () { refresh.submit(); }, delay);
  }
})();

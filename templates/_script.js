// Sorting and filtering for tables marked data-table. Progressive: without it the page is complete.
(function () {
  "use strict";
  function cellValue(row, index) {
    var cell = row.cells[index];
    if (!cell) return "";
    var key = cell.getAttribute("data-sort");
    return key !== null ? key : cell.textContent.trim().toLowerCase();
  }
  // "10.0", "1,234", "3 days", "-1" are numbers; "2026-04-20" and "CVE-2023-4911" are not.
  function number(text) {
    var m = /^-?\d+(\.\d+)?(?=\s|%|$)/.exec(text.replace(/[,\u00a0\u202f]/g, ""));
    return m ? parseFloat(m[0]) : null;
  }
  function compare(a, b) {
    var x = number(a), y = number(b);
    if (x !== null && y !== null) return x - y;
    if (x !== null || y !== null) return x !== null ? 1 : -1;  // text (mostly "") below numbers
    return a.localeCompare(b, undefined, { numeric: true });
  }
  function makeSortable(table) {
    var head = table.tHead && table.tHead.rows[0];
    var body = table.tBodies[0];
    if (!head || !body) return;
    Array.prototype.forEach.call(head.cells, function (th, index) {
      // A button in the header: reachable with Tab, pressed with Enter or Space (WAI-ARIA sortable table).
      var button = document.createElement("button");
      button.type = "button";
      button.className = "sort";
      button.title = "Sort";
      while (th.firstChild) button.appendChild(th.firstChild);
      th.appendChild(button);
      th.classList.add("sortable");
      button.addEventListener("click", function () {
        var desc = th.getAttribute("aria-sort") !== "descending";
        Array.prototype.forEach.call(head.cells, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", desc ? "descending" : "ascending");
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (r1, r2) {
          var c = compare(cellValue(r1, index), cellValue(r2, index));
          return desc ? -c : c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  }
  function makeFilterable(table) {
    var body = table.tBodies[0];
    if (!body || body.rows.length < 8) return;
    // A table cut to its top rows says where the others are, so that no filter answers "none" falsely.
    var total = parseInt(table.getAttribute("data-total") || "0", 10);
    var rest = table.getAttribute("data-rest") || "";
    var tools = document.createElement("div");
    tools.className = "tools";
    var input = document.createElement("input");
    input.type = "search";
    input.placeholder = "Filter rows (namespace, image, CVE, package …)";
    input.setAttribute("aria-label", "Filter rows");
    var shown = document.createElement("span");
    shown.className = "shown";
    shown.setAttribute("aria-live", "polite");
    tools.appendChild(input);
    tools.appendChild(shown);
    table.parentNode.insertBefore(tools, table);
    input.addEventListener("input", function () {
      var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
      var count = 0;
      Array.prototype.forEach.call(body.rows, function (row) {
        var text = row.textContent.toLowerCase();
        var ok = words.every(function (w) { return text.indexOf(w) !== -1; });
        row.style.display = ok ? "" : "none";
        if (ok) count++;
      });
      var n = body.rows.length;
      var text = count + " of " + n.toLocaleString("en") + " rows";
      if (total > n) {
        text = count + " of the " + n.toLocaleString("en") + " rows on this page; " +
          (total - n).toLocaleString("en") + " more rows are not on this page: see " + rest;
      }
      shown.textContent = words.length ? text : "";
    });
  }
  Array.prototype.forEach.call(document.querySelectorAll("table[data-table]"), function (t) {
    makeFilterable(t);
    makeSortable(t);
  });
})();

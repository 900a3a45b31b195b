// Sorting and filtering for tables marked data-table. Progressive: without it the page is complete.
(function () {
  "use strict";
  function cellValue(row, index) {
    var cell = row.cells[index];
    if (!cell) return "";
    var key = cell.getAttribute("data-sort");
    return key !== null ? key : cell.textContent.trim().toLowerCase();
  }
  function compare(a, b) {
    var x = parseFloat(a), y = parseFloat(b);
    if (!isNaN(x) && !isNaN(y) && String(x) === a && String(y) === b) return x - y;
    return a < b ? -1 : a > b ? 1 : 0;
  }
  function makeSortable(table) {
    var head = table.tHead && table.tHead.rows[0];
    var body = table.tBodies[0];
    if (!head || !body) return;
    Array.prototype.forEach.call(head.cells, function (th, index) {
      th.classList.add("sortable");
      th.setAttribute("title", "Sort");
      th.addEventListener("click", function () {
        var desc = !th.classList.contains("sorted-desc");
        Array.prototype.forEach.call(head.cells, function (h) { h.classList.remove("sorted-asc", "sorted-desc"); });
        th.classList.add(desc ? "sorted-desc" : "sorted-asc");
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
    var tools = document.createElement("div");
    tools.className = "tools";
    var input = document.createElement("input");
    input.type = "search";
    input.placeholder = "Filter rows (namespace, image, CVE, package …)";
    input.setAttribute("aria-label", "Filter rows");
    var shown = document.createElement("span");
    shown.className = "shown";
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
      shown.textContent = words.length ? count + " of " + body.rows.length + " rows" : "";
    });
  }
  Array.prototype.forEach.call(document.querySelectorAll("table[data-table]"), function (t) {
    makeSortable(t);
    makeFilterable(t);
  });
})();

(function(){
  function key(cell, numeric){
    var v = cell.getAttribute("data-v");
    if (v === null) v = cell.textContent.trim();
    if (!numeric) return v.toLowerCase();
    return v === "" ? null : parseFloat(v);
  }
  document.querySelectorAll("table.sortable").forEach(function(table){
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function(th, col){
      var button = th.querySelector("button");
      if (!button) return;
      button.addEventListener("click", function(){
        var now = th.getAttribute("aria-sort");
        var dir = now === "ascending" ? "descending" : now === "descending" ? "ascending"
                  : (th.getAttribute("data-first") || "ascending");
        var numeric = th.getAttribute("data-type") === "num";
        var sign = dir === "ascending" ? 1 : -1;
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows).map(function(row, i){
          return {row: row, i: i, k: key(row.cells[col], numeric), last: row.hasAttribute("data-last") ? 1 : 0};
        });
        rows.sort(function(a, b){
          if (a.last !== b.last) return a.last - b.last;  // rows too small to judge or degenerate: always last
          if (a.k === null || b.k === null) return (a.k === null) - (b.k === null) || a.i - b.i;
          if (a.k < b.k) return -sign;
          if (a.k > b.k) return sign;
          return a.i - b.i;
        });
        rows.forEach(function(r){ body.appendChild(r.row); });
        Array.prototype.forEach.call(heads, function(h){ h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", dir);
      });
    });
  });
  document.querySelectorAll(".table-tools").forEach(function(tools){
    var table = document.getElementById(tools.getAttribute("data-table"));
    if (!table) return;
    var rows = Array.prototype.slice.call(table.tBodies[0].rows);
    var box = tools.querySelector("input.filter");
    var picks = Array.prototype.slice.call(tools.querySelectorAll("select[data-key]"));
    var count = tools.querySelector(".row-count");
    function apply(){
      var words = (box ? box.value : "").toLowerCase().split(/\s+/).filter(Boolean);
      var shown = 0;
      rows.forEach(function(row){
        var text = row.getAttribute("data-words") || "";
        var keep = words.every(function(w){ return text.indexOf(w) >= 0; }) && picks.every(function(s){
          return !s.value || row.getAttribute("data-" + s.getAttribute("data-key")) === s.value;
        });
        row.hidden = !keep;
        if (keep) shown++;
      });
      if (count) count.textContent = shown + " of " + rows.length + " rows";
    }
    if (box) box.addEventListener("input", apply);
    picks.forEach(function(s){ s.addEventListener("change", apply); });
    var toggle = tools.querySelector(".toggle-columns");
    if (toggle) toggle.addEventListener("click", function(){
      var on = table.classList.toggle("all-columns");
      toggle.setAttribute("aria-pressed", on ? "true" : "false");
    });
  });
})();

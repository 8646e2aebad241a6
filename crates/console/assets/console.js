// vltava console: progressive behaviour. Every page works without it; with
// it, tables sort and filter, charts draw, and marked regions refresh.
"use strict";

// <input data-filter-table="ID">: hides the rows of table #ID whose text
// does not contain the input's value (case-insensitive).
function vltavaFilters() {
  for (const input of document.querySelectorAll("input[data-filter-table]")) {
    const table = document.getElementById(input.dataset.filterTable);
    if (!table) continue;
    const apply = () => {
      const q = input.value.trim().toLowerCase();
      for (const row of table.tBodies[0].rows) {
        row.hidden = q !== "" && !row.textContent.toLowerCase().includes(q);
      }
    };
    input.addEventListener("input", apply);
    apply();
  }
}

// <table class="sortable">: a button in each header sorts by that column
// (a cell's data-sort attribute first, then its text; numbers as numbers).
function vltavaSortables() {
  for (const table of document.querySelectorAll("table.sortable")) {
    const headers = Array.from(table.tHead ? table.tHead.rows[0].cells : []);
    headers.forEach((th, index) => {
      if (th.dataset.nosort !== undefined || !th.textContent.trim()) return;
      const button = document.createElement("button");
      button.className = "sort";
      button.type = "button";
      while (th.firstChild) button.appendChild(th.firstChild);
      th.appendChild(button);
      button.addEventListener("click", () => {
        const asc = th.getAttribute("aria-sort") !== "ascending";
        headers.forEach(h => h.removeAttribute("aria-sort"));
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        const key = row => {
          const cell = row.cells[index];
          const raw = cell ? (cell.dataset.sort ?? cell.textContent.trim()) : "";
          const n = Number(raw.replace(/,/g, ""));
          return raw !== "" && !Number.isNaN(n) ? n : raw.toLowerCase();
        };
        const body = table.tBodies[0];
        const rows = Array.from(body.rows);
        rows.sort((a, b) => {
          const x = key(a), y = key(b);
          const c = typeof x === typeof y ? (x < y ? -1 : x > y ? 1 : 0) : (typeof x === "number" ? -1 : 1);
          return asc ? c : -c;
        });
        rows.forEach(r => body.appendChild(r));
      });
    });
  }
}

// <div class="chart" data-chart-url="/api/v1/..." [data-chart-refresh="10000"]
//      [data-chart-title="..."]>: draws the series the URL answers:
// {"t": [unix seconds...], "series": [{"label": "...", "values": [...]}]}
// (a value may be null). A table of the latest values is the fallback text.
const vltavaColors = ["#0a5fb4", "#b3261e", "#1a7f37", "#8a5a00", "#6f42c1", "#0b7285"];
function vltavaCharts() {
  if (typeof uPlot === "undefined") return;
  for (const el of document.querySelectorAll("div.chart[data-chart-url]")) {
    let plot = null;
    const draw = async () => {
      let data;
      try {
        const r = await fetch(el.dataset.chartUrl, { headers: { Accept: "application/json" } });
        if (!r.ok) return;
        data = await r.json();
      } catch (e) { return; }
      const columns = [data.t, ...data.series.map(s => s.values)];
      const width = Math.max(280, el.clientWidth || 600);
      if (plot && plot.series.length === data.series.length + 1) {
        plot.setData(columns);
        return;
      }
      if (plot) plot.destroy();
      el.replaceChildren();
      plot = new uPlot({
        title: el.dataset.chartTitle || "",
        width, height: 220,
        series: [{}, ...data.series.map((s, i) => ({ label: s.label, stroke: vltavaColors[i % vltavaColors.length], width: 2 }))],
        axes: [{}, { size: 70 }],
      }, columns, el);
    };
    draw();
    const every = Number(el.dataset.chartRefresh || 0);
    if (every > 0) setInterval(draw, every);
    window.addEventListener("resize", () => { if (plot) plot.setSize({ width: Math.max(280, el.clientWidth), height: 220 }); });
  }
}

// <section data-refresh-url="/fragment" data-refresh="5000">: replaces its
// contents with the URL's HTML every N ms (live views).
function vltavaRefreshers() {
  for (const el of document.querySelectorAll("[data-refresh-url][data-refresh]")) {
    const every = Number(el.dataset.refresh);
    if (!(every > 0)) continue;
    setInterval(async () => {
      if (document.hidden) return;
      try {
        const r = await fetch(el.dataset.refreshUrl, { headers: { Accept: "text/html" } });
        if (r.ok) el.innerHTML = await r.text();
      } catch (e) { /* the next round tries again */ }
    }, every);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  vltavaFilters();
  vltavaSortables();
  vltavaCharts();
  vltavaRefreshers();
});

// The deploylens dashboard page. Every number shown is a value of a canned query, fetched
// from this server's JSON API with the filters as parameters: the page formats and selects,
// it never computes a figure of its own.
"use strict";

(function () {
  const $ = (sel, root) => (root || document).querySelector(sel);
  const POLL_MS = 2000;
  const TOP_SERIES = 8;
  const TABLE_ROWS = 50;
  const state = { generation: null, rendering: false, again: false, charts: {} };

  // ---- fetching -------------------------------------------------------------------------

  class HttpError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  function token() { return sessionStorage.getItem("deploylens-token"); }

  // The server runs a few client queries at once and answers 429 past them: the page keeps
  // to fewer than that, and waits and tries again when other clients hold the slots.
  const MAX_IN_FLIGHT = 2;
  let inFlight = 0;
  const waiting = [];

  async function slot() {
    if (inFlight < MAX_IN_FLIGHT) { inFlight++; return; }
    await new Promise((resolve) => waiting.push(resolve));
  }

  function release() {
    const next = waiting.shift();
    if (next) next(); else inFlight--;
  }

  async function getJson(path) {
    await slot();
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          return await getJsonOnce(path);
        } catch (e) {
          if (!(e instanceof HttpError) || e.status !== 429 || attempt >= 8) throw e;
          await new Promise((resolve) => setTimeout(resolve, 150 * attempt));
        }
      }
    } finally {
      release();
    }
  }

  async function getJsonOnce(path) {
    const headers = { Accept: "application/json" };
    const t = token();
    if (t) headers.Authorization = "Bearer " + t;
    const response = await fetch(path, { headers, cache: "no-store" });
    if (response.status === 401) {
      askToken();
      throw new HttpError(401, "this server needs a token");
    }
    if (!response.ok) {
      let message = response.statusText;
      try { message = (await response.json()).error || message; } catch (_) { /* not JSON */ }
      throw new HttpError(response.status, message);
    }
    return response.json();
  }

  function filters() {
    return {
      repository: $("#filter-repository").value,
      environment: $("#filter-environment").value,
      window: $("#filter-window").value,
    };
  }

  function query(name, f, extra) {
    const p = new URLSearchParams({ window: f.window });
    if (f.repository) p.set("repository", f.repository);
    if (f.environment) p.set("environment", f.environment);
    for (const [k, v] of Object.entries(extra || {})) p.set(k, v);
    return getJson("/api/queries/" + encodeURIComponent(name) + "?" + p);
  }

  // Periods of the duration trend: a point per day, per week over all history.
  function trendGranularity(window) { return window === "all" ? "week" : "day"; }

  // ---- formatting (display only) --------------------------------------------------------

  function pct(v) {
    if (v === null || v === undefined) return "–";
    const p = v * 100;
    return (p === 100 || p === 0 ? p.toFixed(0) : p.toFixed(1)) + "%";
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    const s = Number(seconds);
    if (s < 60) return (s < 10 ? s.toFixed(1) : s.toFixed(0)) + "s";
    const m = Math.floor(s / 60), h = Math.floor(m / 60), d = Math.floor(h / 24);
    if (d > 0) return d + "d " + (h % 24) + "h";
    if (h > 0) return h + "h " + (m % 60) + "m";
    return m + "m " + Math.floor(s % 60) + "s";
  }

  function when(ts) {
    if (!ts) return "–";
    return String(ts).replace("T", " ").replace(/(:\d\d)(\.\d+)?Z?$/, "$1").replace(/Z$/, "");
  }

  function number(v, digits) {
    if (v === null || v === undefined) return "–";
    return Number.isInteger(v) ? String(v) : Number(v).toFixed(digits === undefined ? 2 : digits);
  }

  // Columns: [key, heading, kind]; kind picks the format and alignment.
  const FORMATS = {
    ratio: (v) => pct(v),
    seconds: (v) => duration(v),
    time: (v) => when(v),
    count: (v) => number(v),
    rate: (v) => number(v, 2),
    text: (v) => (v === null || v === undefined ? "–" : String(v)),
  };

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined) continue;
      if (k === "class") e.className = v; else e.setAttribute(k, v);
    }
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function cell(row, key, kind) {
    const v = row[key];
    const td = el("td", {
      "data-column": key,
      "data-value": v === null || v === undefined ? "" : (typeof v === "object" ? JSON.stringify(v) : String(v)),
      class: kind === "text" || kind === "time" ? null : "num",
    }, FORMATS[kind](v));
    if (kind === "ratio" && v !== null && v !== undefined) {
      const bar = el("span", { class: "bar" + (v < 0.8 ? " low" : v < 0.95 ? " mid" : "") });
      // Through the CSSOM, which the page's policy allows (a style attribute it would not).
      bar.style.width = (Math.max(0, Math.min(1, v)) * 4).toFixed(2) + "rem";
      td.prepend(bar);
    }
    if (key.endsWith("status") && v) td.classList.add("status-" + v);
    return td;
  }

  function table(container, rows, columns, options) {
    const opts = options || {};
    container.replaceChildren();
    if (rows.length === 0) {
      container.append(el("p", { class: "empty" }, "No data in this window."));
      return;
    }
    const t = el("table");
    const head = el("tr");
    for (const [, heading] of columns) head.append(el("th", {}, heading));
    const thead = el("thead");
    thead.append(head);
    t.append(thead);
    const body = el("tbody");
    for (const row of rows.slice(0, TABLE_ROWS)) {
      const tr = el("tr", { "data-repository": row.repository, "data-environment": row.environment });
      for (const [key, , kind] of columns) tr.append(cell(row, key, kind));
      if (opts.decorate) opts.decorate(tr, row);
      body.append(tr);
    }
    t.append(body);
    container.append(t);
    if (rows.length > TABLE_ROWS) {
      const more = opts.limited ? "More rows" : (rows.length - TABLE_ROWS) + " more rows";
      container.append(el("p", { class: "more" }, more + ": narrow the filters."));
    }
  }

  // ---- charts ---------------------------------------------------------------------------

  const PALETTE = ["#2f6fde", "#d64545", "#1f9d55", "#c98a00", "#8e44ad", "#16a085", "#e67e22", "#7f8c8d", "#34495e"];

  function chart(panel, name, series, data, yLabel, yFormat) {
    const box = $(".chart", panel);
    if (state.charts[name]) { state.charts[name].destroy(); delete state.charts[name]; }
    box.replaceChildren();
    if (data[0].length === 0) {
      box.append(el("p", { class: "empty" }, "No data in this window."));
      return;
    }
    const width = Math.max(300, box.clientWidth || panel.clientWidth - 32);
    const opts = {
      width,
      height: 240,
      series: [{}].concat(series.map((s, i) => ({
        label: s, stroke: PALETTE[i % PALETTE.length], width: 1.5,
        value: (u, v) => (v === null || v === undefined ? "–" : yFormat(v)),
      }))),
      axes: [{}, { label: yLabel, values: (u, ticks) => ticks.map(yFormat), size: 60 }],
      scales: { x: { time: true } },
      legend: { live: true },
    };
    state.charts[name] = new uPlot(opts, data, box);
  }

  const epoch = (ts) => Date.parse(ts) / 1000;

  // ---- panels ---------------------------------------------------------------------------

  function setRows(panel, n) { panel.dataset.rows = String(n); }

  function renderFrequency(rows, comparison) {
    const panel = $('[data-panel="frequency"]');
    setRows(panel, rows.length);
    // The busiest repositories of the window, in the order repository_comparison ranks them.
    const busiest = comparison.slice().sort((a, b) => b.deployments - a.deployments)
      .slice(0, TOP_SERIES).map((r) => r.repository);
    const days = [...new Set(rows.map((r) => r.day))].sort();
    const index = new Map(days.map((d, i) => [d, i]));
    const data = [days.map(epoch)];
    for (const repo of busiest) {
      const ys = new Array(days.length).fill(null);
      for (const r of rows) if (r.repository === repo) ys[index.get(r.day)] = r.deployments;
      data.push(ys);
    }
    chart(panel, "frequency", busiest, busiest.length ? data : [[]], "deployments", (v) => String(v));
  }

  function renderSuccess(rows) {
    const panel = $('[data-panel="success"]');
    setRows(panel, rows.length);
    const sorted = rows.slice().sort((a, b) => (a.success_ratio ?? 2) - (b.success_ratio ?? 2));
    table($(".table", panel), sorted, [
      ["repository", "repository", "text"], ["environment", "environment", "text"],
      ["success_ratio", "success", "ratio"], ["deployments", "deployments", "count"],
      ["failures", "failures", "count"],
    ]);
  }

  function renderDurations(rows, f) {
    const panel = $('[data-panel="durations"]');
    setRows(panel, rows.length);
    // One environment's trend: the one chosen, else production, else the busiest listed.
    const envs = [...new Set(rows.map((r) => r.environment))];
    const env = f.environment || (envs.includes("production") ? "production" : envs[0]);
    $(".which", panel).textContent = env ? env + (f.repository ? " of " + f.repository : "") : "no data";
    const mine = rows.filter((r) => r.environment === env && r.p50_seconds !== null);
    const data = [mine.map((r) => epoch(r.period_start)),
      mine.map((r) => r.p50_seconds), mine.map((r) => r.p95_seconds), mine.map((r) => r.p99_seconds)];
    chart(panel, "durations", ["p50", "p95", "p99"], data, "duration", duration);
  }

  function sourceLink(row) {
    if (!row.event_id) return el("span", {}, "–");
    const where = (row.source_file || "?") + ":" + (row.source_line ?? "?");
    const a = el("a", { class: "source", title: where, href: "/api/source?event_id=" + encodeURIComponent(row.event_id) });
    // Cut from the left (the file name and line stay in view), the path kept left to right.
    a.append(el("span", {}, where));
    a.addEventListener("click", (e) => { e.preventDefault(); showSource(a.getAttribute("href")); });
    return a;
  }

  function renderFailures(rows) {
    const panel = $('[data-panel="failures"]');
    setRows(panel, rows.length);
    table($(".table", panel), rows, [
      ["timestamp", "when", "time"], ["repository", "repository", "text"],
      ["environment", "environment", "text"], ["version", "version", "text"],
      ["error", "error", "text"], ["fix", "fix written down", "text"],
    ], {
      limited: true,
      decorate(tr, row) {
        const err = tr.querySelector('[data-column="error"]');
        err.classList.add("error");
        if (row.error_fingerprint) err.append(" ", el("span", { class: "fp", title: row.error_template || "" }, row.error_fingerprint));
        const fix = tr.querySelector('[data-column="fix"]');
        fix.classList.add("fix");
        if (!row.fix) {
          fix.classList.add("none");
          fix.replaceChildren();
          const b = el("button", { type: "button" }, "find past fixes");
          b.addEventListener("click", () => { $("#fix-query").value = row.error || ""; searchFixes(); });
          fix.append(b);
        }
        const where = el("td", { "data-column": "source" });
        where.append(sourceLink(row));
        tr.append(where);
      },
    });
    const head = $("thead tr", panel);
    if (head) head.append(el("th", {}, "source"));
  }

  function renderEnvironments(rows) {
    const panel = $('[data-panel="environments"]');
    setRows(panel, rows.length);
    table($(".table", panel), rows, [
      ["environment", "environment", "text"], ["repositories", "repos", "count"],
      ["deployments", "deployments", "count"], ["success_ratio", "success", "ratio"],
      ["p50_seconds", "p50", "seconds"], ["p95_seconds", "p95", "seconds"],
      ["p99_seconds", "p99", "seconds"], ["last_deployment", "latest", "time"],
    ]);
  }

  function renderUptime(rows) {
    const panel = $('[data-panel="uptime"]');
    setRows(panel, rows.length);
    const sorted = rows.slice().sort((a, b) => (a.uptime_ratio ?? 2) - (b.uptime_ratio ?? 2));
    table($(".table", panel), sorted, [
      ["repository", "repository", "text"], ["environment", "environment", "text"],
      ["uptime_ratio", "uptime", "ratio"], ["checks", "checks", "count"],
      ["failed_checks", "failed", "count"], ["last_check", "latest", "time"],
    ]);
  }

  function renderRepositories(rows) {
    const panel = $('[data-panel="repositories"]');
    setRows(panel, rows.length);
    table($(".table", panel), rows, [
      ["repository", "repository", "text"], ["deployments", "deployments", "count"],
      ["deployments_per_day", "per day", "rate"], ["success_ratio", "success", "ratio"],
      ["p50_seconds", "p50", "seconds"], ["p95_seconds", "p95", "seconds"],
      ["median_restore_seconds", "restore (median)", "seconds"], ["uptime_ratio", "uptime", "ratio"],
      ["last_deployment", "latest", "time"], ["last_status", "last outcome", "text"],
    ]);
  }

  // ---- filters --------------------------------------------------------------------------

  function fillSelect(select, values) {
    const chosen = select.value;
    const have = [...select.options].slice(1).map((o) => o.value);
    if (have.length === values.length && have.every((v, i) => v === values[i])) return;
    select.replaceChildren(el("option", { value: "" }, "all"));
    for (const v of values) select.append(el("option", { value: v }, v));
    select.value = values.includes(chosen) ? chosen : "";
  }

  async function refreshChoices() {
    // Every repository and environment with a completed deployment, over all history.
    const rows = await getJson("/api/queries/last_deployment");
    fillSelect($("#filter-repository"), [...new Set(rows.map((r) => r.repository))].sort());
    fillSelect($("#filter-environment"), [...new Set(rows.map((r) => r.environment))].sort());
  }

  function readHash() {
    const p = new URLSearchParams(location.hash.slice(1));
    return { repository: p.get("repository") || "", environment: p.get("environment") || "", window: p.get("window") || "" };
  }

  function writeHash(f) {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(f)) if (v) p.set(k, v);
    history.replaceState(null, "", "#" + p);
  }

  // ---- one render of every panel --------------------------------------------------------

  async function render() {
    if (state.rendering) { state.again = true; return; }
    state.rendering = true;
    document.body.dataset.state = "loading";
    const status = $("#status");
    try {
      const st = await getJson("/api/status");
      await refreshChoices();
      const f = filters();
      writeHash(f);
      const [frequency, comparison, success, trend, failures, environments, uptime] = await Promise.all([
        query("deploy_frequency", f), query("repository_comparison", f), query("success_rate", f),
        query("environment_summary", f, { granularity: trendGranularity(f.window) }),
        query("failed_deployments", f, { limit: String(TABLE_ROWS + 1) }), query("environment_summary", f),
        query("uptime", f),
      ]);
      renderFrequency(frequency, comparison);
      renderSuccess(success);
      renderDurations(trend, f);
      renderFailures(failures);
      renderEnvironments(environments);
      renderUptime(uptime);
      renderRepositories(comparison);
      state.generation = st.generation;
      document.body.dataset.generation = String(st.generation);
      document.body.dataset.renders = String(Number(document.body.dataset.renders) + 1);
      document.body.dataset.state = "ready";
      status.className = "status live";
      status.textContent = "live · updated " + new Date().toLocaleTimeString();
    } catch (e) {
      document.body.dataset.state = "error";
      status.className = "status error";
      status.textContent = e.message;
    } finally {
      state.rendering = false;
      if (state.again) { state.again = false; render(); }
    }
  }

  async function poll() {
    try {
      const st = await getJson("/api/status");
      if (st.generation !== state.generation) await render();
    } catch (_) { /* shown at the next render */ }
  }

  // ---- fix search and sources -----------------------------------------------------------

  async function searchFixes() {
    const q = $("#fix-query").value.trim();
    const list = $("#fix-results");
    if (!q) return;
    list.replaceChildren(el("li", { class: "empty" }, "searching…"));
    try {
      const answer = await getJson("/api/fixes?" + new URLSearchParams({ q, limit: "5" }));
      list.replaceChildren();
      if (answer.results.length === 0) list.append(el("li", { class: "empty" }, "Nothing like it in " + answer.searched + " past failures."));
      for (const hit of answer.results) {
        const li = el("li");
        li.append(el("div", { class: "fix" }, hit.fix || "(no fix written down)"));
        li.append(el("div", {}, hit.error));
        const meta = el("div", { class: "why" },
          hit.repository + " · " + hit.environment + " · " + when(hit.time) + " · seen " + hit.occurrences + "× · " + hit.why + " · ");
        meta.append(sourceLink(hit));
        li.append(meta);
        list.append(li);
      }
    } catch (e) {
      list.replaceChildren(el("li", { class: "empty" }, e.message));
    }
  }

  async function showSource(href) {
    const dialog = $("#source-dialog");
    try {
      const s = await getJson(href);
      $("#source-title").textContent = s.source_file + ":" + s.source_line;
      $("#source-line").textContent = s.line + (s.cut ? " …(cut)" : "");
    } catch (e) {
      $("#source-title").textContent = "source not available";
      $("#source-line").textContent = e.message;
    }
    dialog.showModal();
  }

  function askToken() {
    const form = $("#token-form");
    if (!form.hidden) return;
    form.hidden = false;
    $("#token-input").focus();
  }

  // ---- start ----------------------------------------------------------------------------

  function start() {
    const h = readHash();
    if (h.window) $("#filter-window").value = h.window;
    // The repository and environment lists come with the first render; keep the choice.
    for (const [id, v] of [["#filter-repository", h.repository], ["#filter-environment", h.environment]]) {
      if (v) { const s = $(id); s.append(el("option", { value: v }, v)); s.value = v; }
    }
    for (const id of ["#filter-repository", "#filter-environment", "#filter-window"]) {
      $(id).addEventListener("change", render);
    }
    $("#fix-form").addEventListener("submit", (e) => { e.preventDefault(); searchFixes(); });
    $("#token-form").addEventListener("submit", (e) => {
      e.preventDefault();
      sessionStorage.setItem("deploylens-token", $("#token-input").value.trim());
      $("#token-form").hidden = true;
      render();
    });
    let resized;
    window.addEventListener("resize", () => { clearTimeout(resized); resized = setTimeout(render, 300); });
    render();
    setInterval(poll, POLL_MS);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();

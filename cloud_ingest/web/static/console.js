// Shared by every console page: page data, messages, DOM helpers, JSON fetch, live stream, charts.
// Pages add their own module (overview.js, site.js, ...) after this file. No framework, no CDN.
"use strict";
const WC = (() => {
  const data = JSON.parse(document.getElementById("page-data").textContent);
  const messages = data.messages || {};

  function t(key, params) {
    let text = messages[key] !== undefined ? messages[key] : key;
    for (const [k, v] of Object.entries(params || {})) text = text.split("{" + k + "}").join(String(v));
    return text;
  }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  // A figure card: the number (found by its data-stat) over its label.
  function stat(value, label, id) {
    const box = el("div", "card stat");
    const n = el("div", "num", value);
    n.dataset.stat = id;
    box.append(n, el("div", "label", label));
    return box;
  }
  function name(obj) {
    // zh-CN first; English names when the page is English and the object has one.
    return data.lang === "en" && obj.name_en ? obj.name_en : obj.name_zh;
  }
  function toLogin() {
    location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
  }
  async function getJSON(url) {
    const r = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (r.status === 401) { toLogin(); throw new Error("login needed"); }
    if (!r.ok) throw new Error(url + ": " + r.status);
    return r.json();
  }
  function setConn(state, text) {
    const c = document.getElementById("conn");
    if (!c) return;
    c.dataset.state = state;
    c.textContent = text;
  }
  function clock() {
    return new Date().toLocaleTimeString(data.lang === "en" ? "en-GB" : "zh-CN", { hour12: false });
  }
  // An EventSource with the connection badge; `handlers` maps event names to functions.
  function stream(url, handlers) {
    const source = new EventSource(url);
    for (const [name, fn] of Object.entries(handlers)) {
      source.addEventListener(name, (e) => {
        fn(JSON.parse(e.data));
        setConn("live", t("updated_at", { time: clock() }));
      });
    }
    source.onopen = () => setConn("live", t("live"));
    source.onerror = async () => {
      setConn("lost", t("reconnecting"));
      if (source.readyState === EventSource.CLOSED) {
        // A refused stream (e.g. the session ended) is not retried by the browser.
        try { await getJSON("/api/v1/me"); setTimeout(() => stream(url, handlers), 3000); } catch (_) { /* redirected */ }
      }
    };
    return source;
  }
  // The people search of the enrol loop and of 补录: name, pinyin initials or id, in the page.
  function matchPeople(people, text) {
    const q = text.trim().toLowerCase();
    if (!q) return [];
    return people.filter((p) =>
      p.name.toLowerCase().includes(q) || p.initials.startsWith(q) || p.id.toLowerCase().startsWith(q));
  }
  // Wire a search box to its results list: each match a button (`label(p)`), a click or Enter
  // (the first match) calls `pick(p)`; `find(text)` gives the matches. Returns the redraw.
  function personSearch(input, results, find, label, pick) {
    function show() {
      const found = find(input.value);
      results.replaceChildren(...found.map((p) => {
        const b = el("button", "pick-person", label(p));
        b.type = "button";
        b.dataset.person = p.id;
        b.addEventListener("click", () => pick(p));
        return b;
      }));
      if (input.value.trim() && !found.length) results.append(el("span", "muted", t("no_match")));
    }
    input.addEventListener("input", show);
    input.addEventListener("keydown", (e) => {
      if (e.key !== "Enter") return;
      e.preventDefault();
      const found = find(input.value);
      if (found.length) pick(found[0]);
    });
    return show;
  }
  function stateLabel(state) { return t("state_" + (state || "unknown")); }
  function deviceDot(state) { return el("span", "dot " + (state || "unknown")); }
  // A wire time (UTC ISO) as the server's format_ts shows it: '2026-11-30 11:39' in the site's zone.
  function localTime(iso, tz) {
    const parts = {};
    const fmt = new Intl.DateTimeFormat("en-CA", {
      timeZone: tz || "Asia/Shanghai", hourCycle: "h23",
      year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
    });
    for (const p of fmt.formatToParts(new Date(iso))) parts[p.type] = p.value;
    return parts.year + "-" + parts.month + "-" + parts.day + " " + parts.hour + ":" + parts.minute;
  }
  // uPlot's date templates are English and 12-hour ({h}{aa}, {M}/{D}/{YY}, {MMM}): made 24-hour
  // and Chinese-ordered, so axes and the legend read 11:30, 11月30日, 2026-11-30 11:30.
  function chartDateTemplate(tpl) {
    return tpl.replace(/\{h\}/g, "{HH}").replace(/\{(aa|AA|a)\}/g, "")
      .replace(/\{M\}\/\{D\}\/\{YY\}/g, "{YYYY}-{MM}-{DD}").replace(/\{M\}\/\{D\}/g, "{M}月{D}日")
      .replace(/\{MMMM?\}/g, "{M}月").replace(/\{WWWW?\} ?/g, "");
  }
  // uPlot chart in `box`: x = unix seconds, series = [{label, values, color, bars}]; site tz on the axis.
  function chart(box, x, series, opts) {
    box.replaceChildren();
    const width = Math.max(280, box.clientWidth || 480);
    // Bar series side by side (left, right) rather than drawn over each other.
    const nBars = series.filter((s) => s.bars).length;
    const barPaths = (k) => uPlot.paths.bars({ size: [nBars > 1 ? 0.4 : 0.7, 40], align: nBars > 1 ? (k % 2 ? 1 : -1) : 0 });
    let barIndex = 0;
    const tz = (opts && opts.tz) || "Asia/Shanghai";
    const pad = (opts && opts.pad) || 0;
    const plot = new uPlot({
      width, height: (opts && opts.height) || 240,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), tz),
      fmtDate: (tpl) => uPlot.fmtDate(chartDateTemplate(tpl)),
      scales: { x: { time: true, range: (u, min, max) => [min - pad, max + pad] }, y: { range: (u, min, max) => [0, Math.max(4, max * 1.1)] } },
      legend: { show: true },
      // The x series' legend label (uPlot's default is "Time").
      series: [{ label: document.documentElement.lang === "en" ? "Time" : "时间" }].concat(series.map((s) => ({
        label: s.label, stroke: s.color, width: 2,
        fill: s.bars ? s.color + "99" : undefined,
        paths: s.bars ? barPaths(barIndex++) : undefined, points: { show: false },
      }))),
      axes: [{ space: 72 }, { size: 40 }],  // room for "11月30日" between x labels
    }, [x].concat(series.map((s) => s.values)), box);
    box.dataset.rendered = String(x.length);
    return plot;
  }
  // Alert counts for the nav badge on every page (and for pages that listen): polled, since
  // alerts change every few seconds at most. A page rendered with `reload_on_alerts` reloads
  // when the counts differ from those it was rendered with, unless someone is typing in it.
  const alertListeners = [];
  function onAlertCounts(fn) { alertListeners.push(fn); }
  function sameCounts(a, b) {
    const keys = new Set(Object.keys(a || {}).concat(Object.keys(b || {})));
    for (const k of keys) if ((a || {})[k] !== (b || {})[k]) return false;
    return true;
  }
  function typing() {
    const active = document.activeElement;
    if (active && active.form && active.tagName === "INPUT" && active.type !== "hidden") return true;
    return Array.from(document.querySelectorAll("main form input[name=note]")).some((i) => i.value);
  }
  async function pollAlerts() {
    try {
      const counts = await getJSON("/api/v1/alerts/counts");
      const badge = document.getElementById("nav-alert-count");
      if (badge) {
        badge.hidden = counts.open === 0;
        badge.textContent = String(counts.open);
        badge.title = t("alerts_open", { n: counts.open });
      }
      for (const fn of alertListeners) fn(counts);
      if (data.reload_on_alerts && !sameCounts(counts.by_kind, data.alert_counts) && !typing()) {
        location.reload();
        return;
      }
    } catch (_) { /* offline for a moment: the next poll tries again */ }
    setTimeout(pollAlerts, (data.alert_poll_s || 15) * 1000);
  }
  document.addEventListener("DOMContentLoaded", pollAlerts);
  // A form with data-confirm (e.g. deactivating a card) asks before it is sent.
  document.addEventListener("submit", (e) => {
    const question = e.target.dataset && e.target.dataset.confirm;
    if (question && !window.confirm(question)) e.preventDefault();
  });
  return { data, t, el, stat, name, getJSON, stream, setConn, stateLabel, deviceDot, chart, clock, localTime, onAlertCounts, matchPeople, personSearch };
})();

// Print buttons (the meal sheet): no inline script under the Content-Security-Policy.
document.querySelectorAll("[data-print]").forEach((button) => {
  button.addEventListener("click", () => window.print());
});

// One site: today's numbers, curve, meals and repeats, who is here, kiosks, 7/30-day charts.
"use strict";
(() => {
  const { t, el, stat } = WC;
  const siteId = WC.data.site_id;
  const base = "/api/v1/sites/" + encodeURIComponent(siteId);
  const $ = (id) => document.getElementById(id);
  let tz = "Asia/Shanghai";
  let timelineTimer = null;

  function rows(tbody, list, empty, cells) {
    tbody.replaceChildren();
    if (!list.length) {
      const td = el("td", "empty", empty);
      td.colSpan = 6;
      const tr = el("tr");
      tr.append(td);
      tbody.append(tr);
    }
    for (const item of list) {
      const tr = el("tr");
      tr.append(...cells(item, tr));
      tbody.append(tr);
    }
  }

  function renderSite(s) {
    tz = s.tz;
    const cap = s.capacity ? " / " + s.capacity : "";
    $("stats").replaceChildren(
      stat(s.present + cap, t("present_now") + (cap ? " / " + t("capacity") : ""), "present"),
      stat(s.arrivals, t("arrivals_today"), "arrivals"),
      stat(s.meals_total, t("meals_today"), "meals"),
      stat(s.meal_repeats, t("meal_repeats"), "meal_repeats"),
      stat(s.unknown_cards, t("unknown_cards"), "unknown_cards"),
    );
    rows($("people").tBodies[0], s.present_people, t("nobody_present"), (p) => [
      el("td", "", p.display_name || t("visitor") + " · " + p.person_id),
      el("td", "", p.since.slice(11)),
    ]);
    rows($("kiosks").tBodies[0], s.devices, "—", (d) => {
      const state = el("td");
      state.append(WC.deviceDot(d.state), document.createTextNode(WC.stateLabel(d.state)));
      const seen = d.status_received_at ? WC.localTime(d.status_received_at, tz) : "—";
      return [
        el("td", "", d.device_id + " · " + t("mode_" + d.mode)),
        state,
        el("td", "", seen),
        el("td", "n", d.outbox_depth === undefined || d.outbox_depth === null ? "—" : d.outbox_depth),
        el("td", "", d.reader ? t("reader_" + d.reader) : "—"),
      ];
    });
    document.body.dataset.present = s.present;
  }

  function renderTimeline(tl) {
    const meals = $("meals").tBodies[0];
    meals.replaceChildren();
    for (const p of ["breakfast", "lunch", "dinner"]) {
      const tr = el("tr");
      tr.append(el("td", "", t(p)), el("td", "n", tl.meals_by_period[p]));
      meals.append(tr);
    }
    rows($("repeats").tBodies[0], tl.repeats, t("no_repeats"), (r, tr) => {
      tr.className = "repeat";
      return [el("td", "", r.at.slice(11)), el("td", "", r.person_id || ""), el("td", "", r.meal_period ? t(r.meal_period) : ""),
              el("td", "", "⚠ " + t("repeat_flag"))];
    });
    WC.chart($("chart-today"), tl.t, [
      { label: t("present_now"), values: tl.present, color: "#1d5fa8" },
      { label: t("arrivals_today"), values: tl.arrivals, color: "#2f855a", bars: true },
      { label: t("meals_per_slot"), values: tl.meals, color: "#b5512a", bars: true },
    ], { tz: tl.tz });
  }

  function renderHistory(h) {
    const last = (arr, n) => arr.slice(Math.max(0, arr.length - n));
    for (const [id, n] of [["chart-7", 7], ["chart-30", 30]]) {
      WC.chart($(id), last(h.t, n), [
        { label: t("daily_arrivals"), values: last(h.arrivals, n), color: "#2f855a", bars: true },
        { label: t("daily_meals"), values: last(h.meals, n), color: "#b5512a", bars: true },
      ], { tz: h.tz, height: 220, pad: 43200 });
    }
  }

  async function loadSite() { renderSite(await WC.getJSON(base)); }
  async function loadTimeline() { renderTimeline(await WC.getJSON(base + "/timeline")); }
  async function loadAll() {
    await loadSite();
    await Promise.all([loadTimeline(), WC.getJSON(base + "/history?days=30").then(renderHistory)]);
  }

  loadAll().catch((err) => WC.setConn("lost", String(err.message || err)));
  WC.stream("/api/v1/overview/stream?site=" + encodeURIComponent(siteId), {
    hello: () => {},
    sites: () => {
      loadSite();
      // The curve reads InfluxDB: at most every 10 s, however busy the canteen is.
      if (!timelineTimer) timelineTimer = setTimeout(() => { timelineTimer = null; loadTimeline(); }, 10000);
    },
  });
})();

// The live overview: one page of sites from /api/v1/overview, kept live by the delta stream.
"use strict";
(() => {
  const { t, el, name, stat } = WC;
  const params = new URLSearchParams(location.search);
  const state = {
    area: params.has("area") ? params.get("area") : WC.data.scope,
    q: params.get("q") || "",
    offline: params.get("offline") === "1",
    has_meals: params.get("has_meals") === "1",
    sort: params.get("sort") || "area",
    page: Number(params.get("page") || 1),
  };
  const $ = (id) => document.getElementById(id);
  let source = null;
  let refetchTimer = null;

  function query() {
    const p = new URLSearchParams({ area: state.area, sort: state.sort, page: state.page, page_size: WC.data.page_size });
    if (state.q) p.set("q", state.q);
    if (state.offline) p.set("offline", "true");
    if (state.has_meals) p.set("has_meals", "true");
    return p;
  }
  function remember() {
    const p = new URLSearchParams();
    if (state.area !== WC.data.scope) p.set("area", state.area);
    if (state.q) p.set("q", state.q);
    if (state.offline) p.set("offline", "1");
    if (state.has_meals) p.set("has_meals", "1");
    if (state.sort !== "area") p.set("sort", state.sort);
    if (state.page > 1) p.set("page", state.page);
    history.replaceState(null, "", location.pathname + (p.toString() ? "?" + p : ""));
  }

  function renderRollup(rollup) {
    const s = rollup.scope;
    const trail = $("trail");
    trail.replaceChildren();
    for (const a of rollup.trail.concat([s])) {
      const link = el("a", "", a.path === "" ? t("all_areas") : name(a));
      link.href = "#";
      link.dataset.area = a.path;
      trail.append(link, document.createTextNode(" "));
    }
    $("totals").replaceChildren(
      stat(s.present + " / " + s.capacity, t("present_now") + " / " + t("capacity"), "present"),
      stat(s.arrivals, t("arrivals_today"), "arrivals"),
      stat(s.meals_total, t("meals_today"), "meals"),
      stat(s.kiosks_offline + " / " + s.kiosks, t("kiosks_offline") + " / " + t("kiosks"), "kiosks_offline"),
      stat(s.sites, t("n_sites", { n: "" }).trim(), "sites"),
    );
    const table = $("areas");
    const body = table.tBodies[0];
    body.replaceChildren();
    for (const a of rollup.children) {
      const tr = el("tr");
      tr.dataset.area = a.path;
      const link = el("a", "", name(a));
      link.href = "#";
      link.dataset.area = a.path;
      const first = el("td");
      first.append(link, document.createTextNode(" "), el("span", "muted", t(a.level)));
      tr.append(first);
      for (const [v, id] of [[a.sites, "sites"], [a.present, "present"], [a.capacity, "capacity"], [a.arrivals, "arrivals"], [a.meals_total, "meals"], [a.kiosks_offline, "kiosks_offline"]]) {
        const td = el("td", "n", v);
        td.dataset.stat = id;
        tr.append(td);
      }
      body.append(tr);
    }
    table.hidden = rollup.children.length === 0;
  }

  function kioskCell(row) {
    const td = el("td");
    if (!row.kiosks) return td;
    const badge = row.kiosks_offline
      ? el("span", "badge bad", t("n_offline", { n: row.kiosks_offline }))
      : el("span", "badge ok", t("all_online"));
    td.append(badge, document.createTextNode(" "));
    for (const d of row.devices) {
      const dot = WC.deviceDot(d.state);
      dot.title = d.device_id + " · " + WC.stateLabel(d.state);
      td.append(dot);
    }
    return td;
  }
  function fillRow(tr, row) {
    const site = el("td");
    const link = el("a", "", name(row));
    link.href = "/sites/" + encodeURIComponent(row.site_id);
    site.append(link);
    const cap = row.capacity ? " / " + row.capacity : "";
    const cells = [site, el("td", "", data_area(row))];
    for (const [v, id] of [[row.present + cap, "present"], [row.arrivals, "arrivals"], [row.meals.breakfast, "meal-breakfast"],
                           [row.meals.lunch, "meal-lunch"], [row.meals.dinner, "meal-dinner"], [row.meal_repeats, "meal_repeats"]]) {
      const td = el("td", "n", v);
      td.dataset.stat = id;
      cells.push(td);
    }
    cells.push(kioskCell(row));
    tr.replaceChildren(...cells);
    tr.dataset.site = row.site_id;
    tr.dataset.present = row.present;
    tr.dataset.updatedAt = String(Date.now());
  }
  function data_area(row) {
    return WC.data.lang === "en" && row.area_name_en ? row.area_name_en : row.area_name_zh;
  }
  function renderPage(doc) {
    const body = $("sites").tBodies[0];
    body.replaceChildren();
    if (!doc.sites.length) {
      const td = el("td", "empty", t("no_sites"));
      td.colSpan = 9;
      const tr = el("tr");
      tr.append(td);
      body.append(tr);
    }
    for (const row of doc.sites) {
      const tr = el("tr");
      fillRow(tr, row);
      body.append(tr);
    }
    state.page = doc.page;
    $("count").textContent = t("n_sites", { n: doc.total });
    $("pageinfo").textContent = t("page_of", { page: doc.page, pages: doc.pages });
    $("prev").disabled = doc.page <= 1;
    $("next").disabled = doc.page >= doc.pages;
    renderRollup(doc.rollup);
    document.body.dataset.version = doc.version;
    remember();
  }
  async function load() {
    try {
      renderPage(await WC.getJSON("/api/v1/overview?" + query()));
    } catch (err) {
      WC.setConn("lost", String(err.message || err));
    }
  }
  function applyDeltas(msg) {
    const body = $("sites").tBodies[0];
    let reorder = state.sort !== "area" && state.sort !== "name";
    for (const row of msg.sites) {
      const tr = body.querySelector('tr[data-site="' + CSS.escape(row.site_id) + '"]');
      if (!tr) {
        // A site not on this page may now match the filters (e.g. its kiosk went offline).
        if (state.offline || state.has_meals) reorder = true;
        continue;
      }
      fillRow(tr, row);
      tr.classList.remove("flash");
      void tr.offsetWidth; // restart the highlight animation
      tr.classList.add("flash");
    }
    document.body.dataset.version = msg.version;
    if (reorder) {
      // Order or membership may have changed: refetch this page, at most once a second.
      clearTimeout(refetchTimer);
      refetchTimer = setTimeout(load, 1000);
    }
  }
  function connect() {
    if (source) source.close();
    source = WC.stream("/api/v1/overview/stream?area=" + encodeURIComponent(state.area), {
      hello: () => load(), // (re)connected: catch up on anything missed
      sites: applyDeltas,
      rollup: renderRollup,
    });
  }
  function goArea(path) {
    state.area = path;
    state.page = 1;
    connect();
  }

  $("q").value = state.q;
  $("offline").checked = state.offline;
  $("has_meals").checked = state.has_meals;
  $("sort").value = state.sort;
  let typing = null;
  $("q").addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => { state.q = $("q").value.trim(); state.page = 1; load(); }, 250);
  });
  $("controls").addEventListener("submit", (e) => e.preventDefault());
  for (const id of ["offline", "has_meals"]) {
    $(id).addEventListener("change", () => { state[id] = $(id).checked; state.page = 1; load(); });
  }
  $("sort").addEventListener("change", () => { state.sort = $("sort").value; state.page = 1; load(); });
  $("prev").addEventListener("click", () => { state.page -= 1; load(); });
  $("next").addEventListener("click", () => { state.page += 1; load(); });
  document.addEventListener("click", (e) => {
    const a = e.target.closest("a[data-area]");
    if (!a) return;
    e.preventDefault();
    goArea(a.dataset.area);
  });
  // Alert tiles: the counts console.js polls for the nav, per group, in the user's areas.
  WC.onAlertCounts((counts) => {
    for (const [group, n] of Object.entries(counts.by_group)) {
      const num = document.querySelector('[data-stat="alerts_' + group + '"]');
      if (!num) continue;
      num.textContent = String(n);
      num.closest(".stat").classList.toggle("alarm", n > 0);
    }
  });
  // Midnight resets and clock-driven kiosk states: a full refresh now and then.
  setInterval(load, 60000);
  connect();
})();

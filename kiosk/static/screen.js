// The kiosk screen: idle page with clock and status, and one full-screen answer per tap.
// Fed by server-sent events from the kiosk program on 127.0.0.1; no other network, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
const body = document.body;
// The stream reconnects each second; "out of service" only if it stays down lost_after_s.
let status = { lost_after_s: 5, site: "", tz: "Asia/Shanghai", online: null, today: null, today_zh: "今日", today_en: "today" };
let holdTimer = null;
let lostTimer = null;
let connected = false;
let token = ""; // from the event stream; the staff endpoints want it (kiosk/screen.py)
let people = [];

function show(view) {
  for (const id of ["idle", "tap", "staff", "lost"]) $(id).hidden = id !== view;
  body.dataset.state = view;
  if (view !== "tap") body.dataset.outcome = "";
}

function formatter(options) {
  try {
    return new Intl.DateTimeFormat("zh-CN", { timeZone: status.tz, ...options });
  } catch (err) { // an unknown zone name: China time rather than no clock at all
    return new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", ...options });
  }
}

function tick() {
  const now = new Date();
  $("clock").textContent = formatter({ hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(now);
  $("date").textContent = formatter({ month: "long", day: "numeric", weekday: "long" }).format(now);
}

function renderStatus() {
  $("site").textContent = status.site;
  body.dataset.online = status.online === null ? "" : String(status.online);
  $("net").textContent = status.online === null ? "连接中 Connecting"
    : status.online ? "在线 Online" : "离线 Offline";
  $("today").textContent = status.today === null ? ""
    : `${status.today_zh} ${status.today} · ${status.today} ${status.today_en}`;
  $("offline").hidden = status.online !== false;
  tick();
}

function staffRequest(method, path, body) {
  return fetch(path, {
    method,
    headers: { "X-Warmcard-Token": token, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

function renderPeople() {
  const query = $("staff-search").value.trim();
  const list = $("staff-list");
  list.replaceChildren();
  const shown = people.filter((p) => !query || p.name.includes(query));
  for (const person of shown) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "person" + (person.served ? " served" : "");
    button.setAttribute("role", "listitem");
    button.dataset.personId = person.person_id;
    const name = document.createElement("span");
    name.textContent = person.name;
    button.append(name);
    if (person.served) {
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = "已领 served";
      button.append(badge);
    }
    button.addEventListener("click", () => recordMeal(person.person_id));
    list.append(button);
  }
  $("staff-empty").hidden = shown.length > 0;
}

async function openStaffList(tap) {
  $("staff-meal").textContent = tap.detail_zh || "";
  $("staff-search").value = "";
  people = [];
  renderPeople();
  show("staff");
  body.dataset.outcome = "staff";
  body.dataset.shownAt = String(Date.now());
  clearTimeout(holdTimer);
  holdTimer = setTimeout(() => { if (connected) show("idle"); }, tap.hold_s * 1000);
  const answer = await staffRequest("GET", "/staff/list");
  if (!answer.ok) { show("idle"); return; }
  people = (await answer.json()).people;
  renderPeople();
  body.dataset.listed = String(people.length);
}

async function recordMeal(personId) {
  // The answer arrives as a tap event on the stream, like any tap; it replaces this list.
  const answer = await staffRequest("POST", "/staff/meal", { person_id: personId });
  if (!answer.ok && body.dataset.state === "staff") show("idle");
}

function showTap(tap) {
  if (tap.outcome === "staff") { openStaffList(tap); return; }
  $("title-zh").textContent = tap.title_zh;
  $("title-en").textContent = tap.title_en;
  $("detail-zh").textContent = tap.detail_zh;
  $("detail-en").textContent = tap.detail_en;
  $("detail").classList.toggle("none", !tap.detail_zh && !tap.detail_en);
  show("tap");
  body.dataset.outcome = tap.outcome;
  body.dataset.kind = tap.kind || "";
  body.dataset.shownAt = String(Date.now()); // read by the page test to measure show() -> screen
  clearTimeout(holdTimer);
  holdTimer = setTimeout(() => { if (connected) show("idle"); }, tap.hold_s * 1000);
}

function connect() {
  const events = new EventSource("/events");
  events.onopen = () => {
    connected = true;
    clearTimeout(lostTimer);
    lostTimer = null;
    if (body.dataset.state === "lost") show("idle");
  };
  events.onerror = () => {
    connected = false;
    if (lostTimer === null) lostTimer = setTimeout(() => show("lost"), status.lost_after_s * 1000);
  };
  events.addEventListener("status", (e) => {
    status = JSON.parse(e.data);
    token = status.token || token;
    renderStatus();
  });
  events.addEventListener("tap", (e) => showTap(JSON.parse(e.data)));
}

$("staff-search").addEventListener("input", renderPeople);
$("staff-cancel").addEventListener("click", () => {
  staffRequest("POST", "/staff/cancel");
  show("idle");
});
renderStatus();
setInterval(tick, 1000);
connect();

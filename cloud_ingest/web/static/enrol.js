// Enrol page, a loop: a card tapped at the kiosk appears here; pick the elder by name, pinyin
// initials or id (Enter takes the first match) and the next card's search box has the focus.
"use strict";
(function () {
  const { el, t, data, getJSON, matchPeople, personSearch } = WC;
  const list = document.getElementById("captures");
  const state = document.getElementById("enrol-state");
  const people = data.people || [];
  const byId = new Map(people.map((p) => [p.id, p]));
  const MAX_MATCHES = 8;

  function matches(text) {
    const found = matchPeople(people, text);
    // People still without a card first: in an enrol session they are the ones being enrolled.
    found.sort((a, b) => (a.cards > 0) - (b.cards > 0));
    return found.slice(0, MAX_MATCHES);
  }

  async function post(url, body) {
    const r = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": data.csrf_token },
      body: JSON.stringify(body),
    });
    const doc = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(typeof doc.detail === "string" ? doc.detail : String(r.status));
    return doc;
  }

  async function holderOf(uid) {
    // A search, not GET /cards/<uid>: an unknown card is the usual case and not an error.
    try {
      const doc = await getJSON("/api/v1/registry/cards?q=" + encodeURIComponent(uid));
      const card = doc.items.find((c) => c.card_uid === uid && c.active);
      if (!card) return null;
      const p = byId.get(card.person_id);
      return p ? p.name + " (" + p.id + ")" : card.person_id;
    } catch (_) {
      return null; // offline for a moment: the server still refuses a card held elsewhere
    }
  }

  function focusNext() {
    const next = list.querySelector('.capture:not([data-assigned]) input.pick');
    if (next) next.focus();
  }

  async function assign(c, box, person) {
    const status = box.querySelector(".pick-status");
    // Asked now, not when the card was tapped: someone may have given it out meanwhile.
    const holder = await holderOf(c.card_uid);
    if (holder && !window.confirm(t("transfer_card", { name: holder }))) return;
    try {
      await post("/api/v1/registry/enrol/captures/" + c.capture_id + "/assign", { person_id: person.id });
    } catch (e) {
      status.textContent = t("enrol_failed", { error: e.message });
      status.className = "pick-status badge bad";
      return;
    }
    person.cards += 1;
    box.dataset.assigned = person.id;
    box.querySelector(".picker").remove();
    status.textContent = t("enrolled_to", { name: person.name + " (" + person.id + ")" });
    status.className = "pick-status badge ok";
    focusNext();
  }

  function picker(c, box) {
    const wrap = el("div", "picker");
    const input = el("input");
    input.className = "pick";
    input.type = "search";
    input.placeholder = t("pick_person");
    input.setAttribute("aria-label", t("pick_person"));
    const results = el("div", "pick-results");
    personSearch(
      input, results, matches,
      (p) => p.name + " · " + p.id + (p.cards ? " · " + t("has_card") : ""),
      (p) => assign(c, box, p));
    wrap.append(input, results);
    return wrap;
  }

  function capture(c) {
    const box = el("div", "card capture");
    box.dataset.capture = String(c.capture_id);
    box.dataset.known = String(c.known);
    box.append(el("strong", "", c.card_uid), el("span", "muted", " " + c.ts_local + " "));
    const status = el("span", "pick-status");
    if (c.known) {
      status.className = "pick-status badge warn";
      status.textContent = t("already_assigned");
      holderOf(c.card_uid).then((h) => { if (h && !box.dataset.assigned) status.textContent = t("card_held_by", { name: h }); });
    }
    box.append(status);
    if (document.getElementById("enrol-start")) box.append(picker(c, box)); // editors only
    return box;
  }

  function render(doc) {
    state.textContent = doc.active ? t("enrol_on_until", { until: doc.until_local }) : t("enrol_off");
    state.className = "badge " + (doc.active ? "warn" : "");
    // Keep every box already shown: never wipe a search being typed or an assignment made.
    const old = new Map(Array.from(list.children).map((b) => [b.dataset.capture, b]));
    const hadFocus = list.contains(document.activeElement);
    list.replaceChildren(...doc.captures.map((c) => old.get(String(c.capture_id)) || capture(c)));
    if (!hadFocus) focusNext();
  }

  async function poll() {
    try {
      render(await getJSON("/api/v1/registry/devices/" + encodeURIComponent(data.device_id) + "/enrol"));
    } catch (_) { /* offline for a moment: try again at the next tick */ }
  }
  poll();
  setInterval(poll, 1000);
})();

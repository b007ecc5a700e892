// Enrol page: poll the kiosk's enrol state and offer each captured unknown card for assignment.
"use strict";
(function () {
  const { el, t, data, getJSON } = WC;
  const list = document.getElementById("captures");
  const state = document.getElementById("enrol-state");

  function capture(c) {
    const box = el("div", "card capture");
    box.dataset.capture = String(c.capture_id);
    box.dataset.known = String(c.known);
    box.append(el("strong", "", c.card_uid), el("span", "muted", " " + c.ts + " "));
    if (c.known) {
      box.append(el("span", "badge ok", t("already_assigned")));
      return box;
    }
    // A plain form post: the server answers with the person's page.
    const form = el("form");
    form.method = "post";
    form.action = "/registry/enrol/" + c.capture_id + "/assign";
    const token = el("input");
    token.type = "hidden"; token.name = "csrf_token"; token.value = data.csrf_token;
    const person = el("input");
    person.name = "person_id"; person.required = true;
    person.placeholder = t("person_id");
    person.setAttribute("aria-label", t("person_id"));
    person.setAttribute("list", "people-here");
    form.append(token, person, el("button", "", t("assign")));
    box.append(form);
    return box;
  }

  function render(doc) {
    state.textContent = doc.active ? t("enrol_on_until", { until: doc.until }) : t("enrol_off");
    state.className = "badge " + (doc.active ? "warn" : "");
    // Keep the boxes that did not change: never wipe a person id being typed.
    const old = new Map(Array.from(list.children).map((b) => [b.dataset.capture, b]));
    list.replaceChildren(...doc.captures.map((c) => {
      const box = old.get(String(c.capture_id));
      return box && box.dataset.known === String(c.known) ? box : capture(c);
    }));
  }

  async function poll() {
    try {
      render(await getJSON("/api/v1/registry/devices/" + encodeURIComponent(data.device_id) + "/enrol"));
    } catch (_) { /* offline for a moment: try again at the next tick */ }
  }
  poll();
  setInterval(poll, 2000);
})();

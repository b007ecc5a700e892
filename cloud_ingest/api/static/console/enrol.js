// Enrol page: poll the device's enrol state and offer each captured unknown card for assignment.
"use strict";
(function () {
  const root = document.getElementById("enrol");
  if (!root) return;
  const device = root.dataset.device;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const list = document.getElementById("captures");
  const state = document.getElementById("enrol-state");

  function text(tag, value) {
    const el = document.createElement(tag);
    el.textContent = value;
    return el;
  }

  function render(doc) {
    state.textContent = doc.active
      ? "录入中，截止 " + doc.until + " Enrol mode on until " + doc.until
      : "未开启 Enrol mode off";
    list.replaceChildren();
    for (const c of doc.captures) {
      const box = document.createElement("div");
      box.className = "capture";
      box.append(text("strong", c.card_uid), text("span", " " + c.ts + " "));
      if (c.known) {
        box.append(text("span", "已登记 assigned"));
      } else {
        // A plain form post: the server answers with the person's page.
        const form = document.createElement("form");
        form.method = "post";
        form.action = "/registry/enrol/" + c.capture_id + "/assign";
        const token = document.createElement("input");
        token.type = "hidden"; token.name = "csrf_token"; token.value = csrf;
        const person = document.createElement("input");
        person.name = "person_id"; person.required = true;
        person.placeholder = "人员编号 person id";
        const button = text("button", "分配 Assign");
        form.append(token, person, button);
        box.append(form);
      }
      list.append(box);
    }
  }

  async function poll() {
    try {
      const r = await fetch("/api/v1/registry/devices/" + encodeURIComponent(device) + "/enrol",
                            { headers: { Accept: "application/json" } });
      if (r.ok) render(await r.json());
    } catch (e) { /* offline for a moment: try again at the next tick */ }
  }
  poll();
  setInterval(poll, 2000);
})();

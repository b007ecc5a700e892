// 补录 page: find the elder by name, pinyin initials or id (the enrol loop's search), pick one,
// and the form carries their id. Enter takes the first match.
"use strict";
(function () {
  const { el, t, data, matchPeople } = WC;
  const people = data.people || [];
  const input = document.getElementById("hand-meal-search");
  const results = document.getElementById("hand-meal-results");
  const chosen = document.getElementById("hand-meal-person");
  const shown = document.getElementById("hand-meal-chosen");
  const MAX_MATCHES = 8;

  function pick(p) {
    chosen.value = p.id;
    shown.textContent = t("hand_meal_chosen", { name: p.name + " · " + p.id });
    shown.className = "wide badge ok";
    results.replaceChildren();
    input.value = p.name;
    document.getElementById("hand-meal-reason").focus();
  }

  function show() {
    chosen.value = "";
    shown.textContent = "";
    shown.className = "wide";
    const found = matchPeople(people, input.value).slice(0, MAX_MATCHES);
    results.replaceChildren(...found.map((p) => {
      const b = el("button", "pick-person", p.name + " · " + p.id);
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
    const found = matchPeople(people, input.value);
    if (found.length) pick(found[0]);
  });
  input.focus();
})();

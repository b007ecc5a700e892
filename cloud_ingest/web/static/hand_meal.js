// 补录 page: find the elder by name, pinyin initials or id (the enrol loop's search), pick one,
// and the form carries their id. Enter takes the first match.
"use strict";
(function () {
  const { t, data, matchPeople, personSearch } = WC;
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

  function find(text) {
    chosen.value = "";
    shown.textContent = "";
    shown.className = "wide";
    return matchPeople(people, text).slice(0, MAX_MATCHES);
  }

  personSearch(input, results, find, (p) => p.name + " · " + p.id, pick);
  input.focus();
})();

// Starts GOV.UK Frontend's components (skip link, service navigation, error summary, ...).
// A module script, not inline: the Content-Security-Policy allows only 'self' scripts.
import { initAll } from "/static/govuk/govuk-frontend.min.js";

document.body.classList.add("js-enabled", "govuk-frontend-supported");
initAll();

// The criteria builder's code search: "add" puts the code into the rule's codes and chooses
// its code system (the results arrive by htmx, so the listener is on the document).
document.addEventListener("click", (event) => {
  const button = event.target.closest("button.brygga-pick");
  if (!button) return;
  const row = button.dataset.row;
  const codes = document.getElementById(`rules-${row}-codes`);
  const vocabulary = document.getElementById(`rules-${row}-vocabulary`);
  if (!codes) return;
  const present = codes.value.split(/[\s,;]+/).filter(Boolean);
  if (!present.includes(button.dataset.code)) present.push(button.dataset.code);
  codes.value = present.join(", ");
  if (vocabulary) vocabulary.value = button.dataset.vocabulary;
  codes.focus();
});

// Choosing a rule's kind chooses that kind's usual code system (the server checks the pair).
const DEFAULT_VOCABULARY = { condition: "ICD10", drug: "ATC", measurement: "", procedure: "KVA" };
document.addEventListener("change", (event) => {
  const match = /^rules-(\d+)-kind$/.exec(event.target.id || "");
  if (!match) return;
  const vocabulary = document.getElementById(`rules-${match[1]}-vocabulary`);
  if (vocabulary && event.target.value in DEFAULT_VOCABULARY) {
    vocabulary.value = DEFAULT_VOCABULARY[event.target.value];
  }
});

// A wide table scrolls in its own box on a narrow screen (.brygga-table-wrap): then keyboard
// users must be able to reach and scroll it, and screen readers name it by its caption.
// Tables that fit keep no extra tab stop.
function scrollingTables() {
  for (const wrap of document.querySelectorAll(".brygga-table-wrap")) {
    const caption = wrap.querySelector("caption");
    if (wrap.scrollWidth > wrap.clientWidth) {
      wrap.tabIndex = 0;
      if (caption) {
        wrap.setAttribute("role", "region");
        wrap.setAttribute("aria-label", caption.textContent.trim());
      }
    } else {
      for (const name of ["tabindex", "role", "aria-label"]) wrap.removeAttribute(name);
    }
  }
}
scrollingTables();
window.addEventListener("resize", scrollingTables);
document.body.addEventListener("htmx:afterSettle", scrollingTables);

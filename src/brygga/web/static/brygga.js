// Starts GOV.UK Frontend's components (skip link, service navigation, error summary, ...).
// A module script, not inline: the Content-Security-Policy allows only 'self' scripts.
import { initAll } from "/static/govuk/govuk-frontend.min.js";

document.body.classList.add("js-enabled", "govuk-frontend-supported");
initAll();

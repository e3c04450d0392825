// The page on screen when a pulled change made it stale (sender.js PAGE_KINDS, e.g. the
// supervisor moved the guard's shift shown on the duty page): once the day pack's pages are
// fresh in the worker's cache (refreshStalePages), the page shows the new version by itself,
// unless the user is filling in a form there: then a banner offers it, and what they typed
// stays until they tap it.
//
// A reload, not a swap of <main>: the page modules (forms.js, patrols.js, ...) bind their forms
// once at load, and a form without its handler would be posted instead of saved on the phone.
// The worker answers the reload from the network, else from the cache refreshStalePages filled,
// so the new version shows even if the network dropped right after the pull.
import * as outbox from "./outbox.js";
import { pagesRefreshedAt } from "./sender.js";

const RELOADED_FOR = "fieldapp.reloaded-for";

export async function showFreshPage(device) {
  const banner = document.getElementById("page-changed");
  if (!device || !banner || !banner.hidden) return;
  const refreshedAt = await pagesRefreshedAt(device);
  // Drawn after the refresh (from the network, or from the refreshed cache): already new.
  if (!refreshedAt || refreshedAt <= performance.timeOrigin) return;
  if (!(await outbox.getMeta(`daypack_pages:${device}`))?.includes(location.pathname + location.search)) return;
  // Never reload twice for one refresh (should the phone's clock have been set back meanwhile).
  if (sessionStorage.getItem(RELOADED_FOR) === String(refreshedAt) || beingEdited() || !navigator.serviceWorker?.controller) {
    offer(banner);
  } else {
    sessionStorage.setItem(RELOADED_FOR, String(refreshedAt));
    location.reload();
  }
}

function offer(banner) {
  banner.hidden = false;
  banner.querySelector("button")?.addEventListener("click", () => location.reload(), { once: true });
}

// Forms the user has typed in, ticked, or tapped a button of (a step's time, a camera) since
// the page was drawn or the form was last saved (forms.js resets a form it saved).
export function watchEdits() {
  const touch = (event) => { const form = event.target.closest?.("form"); if (form) form.dataset.touched = ""; };
  document.addEventListener("input", touch, true);
  document.addEventListener("change", touch, true);
  document.addEventListener("click", (event) => {
    if (event.target.closest?.("form button[type=button]")) touch(event);
  }, true);
  document.addEventListener("reset", (event) => delete event.target.dataset?.touched, true);
}

function beingEdited() {
  if (document.querySelector("form[data-touched]")) return true;
  const focused = document.activeElement;
  if (focused?.matches?.("input:not([type=submit]):not([type=button]), textarea, select, [contenteditable]")) return true;
  // Values the browser put back (a restored page) fire no input event.
  return [...document.querySelectorAll("input, textarea")].some(differsFromPage)
    || [...document.querySelectorAll("canvas[data-signature]")].some((canvas) => canvas.signaturePad?.isEmpty() === false);
}

function differsFromPage(field) {
  if (["hidden", "submit", "button", "reset", "image"].includes(field.type)) return false;
  if (field.type === "file") return field.files.length > 0;
  if (field.type === "checkbox" || field.type === "radio") return field.checked !== field.defaultChecked;
  return field.value !== field.defaultValue;
}

// Entry point of every page: offline banner, service worker, the outbox and its sync.
import { forgetPages, keepPageForOffline, registerServiceWorker, watchConnection } from "./pwa.js";
import { attachRecordForms } from "./forms.js";
import { start as startOutboxPage } from "./outbox-page.js";
import { start as startSync } from "./sync.js";

const DEVICE_KEY = "fieldapp.devices";

// Each user on this phone gets a device ID made here (a UUID), kept across logins, so the
// server can tell phones apart and an admin can revoke a lost one.
function deviceIdFor(username) {
  const devices = JSON.parse(localStorage.getItem(DEVICE_KEY) || "{}");
  if (!devices[username]) {
    devices[username] = crypto.randomUUID();
    localStorage.setItem(DEVICE_KEY, JSON.stringify(devices));
  }
  return devices[username];
}

function prepareLoginForm() {
  const form = document.getElementById("login-form");
  if (!form) return false;
  form.addEventListener("submit", () => {
    const username = form.elements.username.value.trim().toLowerCase();
    form.elements.device_id.value = username ? deviceIdFor(username) : "";
  });
  return true;
}

function csrfHeaderForHtmx() {
  const token = document.querySelector('meta[name="csrf-token"]')?.content;
  document.body.addEventListener("htmx:configRequest", (event) => {
    if (token) event.detail.headers["X-CSRFToken"] = token;
  });
}

watchConnection();
csrfHeaderForHtmx();
const onLoginPage = prepareLoginForm();
attachRecordForms();
startOutboxPage();
startSync();
registerServiceWorker()
  .then(() => (onLoginPage ? forgetPages() : keepPageForOffline()))
  .catch((error) => console.warn("service worker not available", error));
import("./push.js").catch((error) => console.warn("push notifications not available", error));

// Web Push on the phone: subscribe, send the subscription to the server every time the app
// opens, keep the inbox badge current, and tell the user what to do when push cannot work
// (blocked, unsupported, or an iPhone where fieldapp is not on the Home Screen yet).
const SENT_KEY = "fieldapp.push.sent"; // sessionStorage: "user|endpoint" sent in this app session
const OFF_KEY = "fieldapp.push.off."; // localStorage + user: turned off on this phone

const user = () => document.body?.dataset.user || "";
const csrfToken = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

function isIos() {
  return /iPad|iPhone|iPod/.test(navigator.userAgent)
    || (navigator.platform === "MacIntel" && navigator.maxTouchPoints > 1);
}

function isStandalone() {
  return window.matchMedia("(display-mode: standalone)").matches || navigator.standalone === true;
}

function isSupported() {
  return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
}

function keyBytes(base64url) {
  const base64 = base64url.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(base64url.length / 4) * 4, "=");
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

function sameKey(subscription, key) {
  const current = subscription.options?.applicationServerKey;
  if (!current) return true;
  const a = new Uint8Array(current);
  const b = keyBytes(key);
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function show(state) {
  const card = document.getElementById("push-setup");
  if (!card) return;
  card.dataset.state = state;
  card.querySelectorAll("[data-push-state]").forEach((el) => { el.hidden = el.dataset.pushState !== state; });
  const tip = document.getElementById("push-install-tip");
  if (tip) tip.hidden = isStandalone() || isIos() || state === "unsupported";
}

async function publicKey() {
  const response = await fetch("/api/push/key", { credentials: "same-origin" });
  if (!response.ok) return null;
  return (await response.json()).publicKey;
}

async function api(method, body) {
  const response = await fetch("/api/push/subscription", {
    method,
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`push subscription: HTTP ${response.status}`);
}

async function currentSubscription(registration, key) {
  let subscription = await registration.pushManager.getSubscription();
  if (subscription && !sameKey(subscription, key)) {
    // The server has a new key pair: the old subscription can never be used again.
    await subscription.unsubscribe();
    subscription = null;
  }
  return subscription || registration.pushManager.subscribe({
    userVisibleOnly: true,
    applicationServerKey: keyBytes(key),
  });
}

// On every app open: make sure the server has this phone's subscription.
async function refresh({ resend = false } = {}) {
  // iPhone and iPad: web push exists only for an app opened from the Home Screen (iOS 16.4+).
  if (isIos() && !isStandalone()) return show("ios-install");
  if (!isSupported()) return show("unsupported");
  if (Notification.permission === "denied") return show("denied");
  if (Notification.permission !== "granted" || localStorage.getItem(OFF_KEY + user())) return show("off");
  if (!navigator.onLine) return show("on");
  const key = await publicKey();
  if (!key) return show("unavailable");
  const registration = await navigator.serviceWorker.ready;
  const subscription = await currentSubscription(registration, key);
  const marker = `${user()}|${subscription.endpoint}`;
  if (resend || sessionStorage.getItem(SENT_KEY) !== marker) {
    await api("POST", subscription.toJSON ? subscription.toJSON() : subscription);
    sessionStorage.setItem(SENT_KEY, marker);
  }
  return show("on");
}

async function turnOn() {
  localStorage.removeItem(OFF_KEY + user());
  const permission = await Notification.requestPermission();
  if (permission !== "granted") return show(permission === "denied" ? "denied" : "off");
  return refresh({ resend: true });
}

async function turnOff() {
  localStorage.setItem(OFF_KEY + user(), "1");
  sessionStorage.removeItem(SENT_KEY);
  const registration = await navigator.serviceWorker.ready;
  const subscription = await registration.pushManager.getSubscription();
  if (subscription) {
    await api("DELETE", { endpoint: subscription.endpoint }).catch(() => {});
    await subscription.unsubscribe().catch(() => {});
  }
  show("off");
}

async function updateBadge() {
  const badge = document.getElementById("inbox-count");
  if (!badge) return;
  const response = await fetch("/api/push/unread", { credentials: "same-origin" });
  if (!response.ok) return;
  const { unread } = await response.json();
  badge.textContent = String(unread);
  badge.hidden = unread === 0;
}

function failed(error) {
  console.warn("push notifications:", error);
  show("error");
}

function start() {
  if (!user()) {
    sessionStorage.removeItem(SENT_KEY); // the next login sends the subscription again
    return;
  }
  document.getElementById("push-enable")?.addEventListener("click", () => turnOn().catch(failed));
  document.getElementById("push-disable")?.addEventListener("click", () => turnOff().catch(failed));
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.addEventListener("message", (event) => {
      if (event.data?.type === "PUSH_RECEIVED") updateBadge().catch(() => {});
    });
  }
  refresh().catch(failed);
}

start();

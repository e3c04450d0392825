// Service worker registration, the "update available" banner, and the offline banner.

const PAGES_CACHE = "fieldapp-pages";

export function watchConnection() {
  const banner = document.getElementById("offline-banner");
  if (!banner) return;
  const show = () => { banner.hidden = navigator.onLine; };
  window.addEventListener("online", show);
  window.addEventListener("offline", show);
  show();
}

function offerUpdate(worker) {
  const banner = document.getElementById("update-banner");
  const button = document.getElementById("update-reload");
  if (!banner || !button) return;
  banner.hidden = false;
  button.addEventListener("click", () => {
    // Reload only once the new worker has taken over, so the page and its cache match.
    navigator.serviceWorker.addEventListener("controllerchange", () => location.reload(), { once: true });
    worker.postMessage({ type: "SKIP_WAITING" });
  }, { once: true });
}

export async function registerServiceWorker() {
  if (!("serviceWorker" in navigator)) return null;
  // A module worker: it imports the outbox sender (sender.js) the pages use.
  const registration = await navigator.serviceWorker.register("/sw.js", { scope: "/", type: "module" });
  // A page that was loading while the first worker activated can miss its clients.claim()
  // (Chromium races the two); ask the worker to claim it again, so this page is served offline.
  navigator.serviceWorker.ready.then((ready) => {
    if (!navigator.serviceWorker.controller) ready.active?.postMessage({ type: "CLAIM" });
  });
  if (registration.waiting && navigator.serviceWorker.controller) offerUpdate(registration.waiting);
  registration.addEventListener("updatefound", () => {
    const worker = registration.installing;
    worker?.addEventListener("statechange", () => {
      // "installed" with a controller present means an older version is running this page.
      if (worker.state === "installed" && navigator.serviceWorker.controller) offerUpdate(worker);
    });
  });
  return registration;
}

// Keep a copy of the page the user is looking at, so it opens again with no network.
export async function keepPageForOffline() {
  if (!("serviceWorker" in navigator) || !navigator.onLine) return;
  const registration = await navigator.serviceWorker.ready;
  registration.active?.postMessage({ type: "CACHE_PAGES", urls: [location.pathname + location.search] });
}

// After logging out, nothing of the previous user's pages stays readable on the phone.
// The outbox (IndexedDB) is kept: unsent records are never thrown away.
export async function forgetPages() {
  const worker = (await navigator.serviceWorker?.ready)?.active;
  if (worker) {
    await new Promise((resolve) => {
      const channel = new MessageChannel();
      channel.port1.onmessage = resolve;
      worker.postMessage({ type: "FORGET_PAGES" }, [channel.port2]);
    });
  }
  if ("caches" in window) await caches.delete(PAGES_CACHE);
}

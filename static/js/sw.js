// fieldapp service worker (a module worker). VERSION and PRECACHE are prepended by the server
// (/sw.js), which also points the relative imports at this release's /static/v/<version>/js/.
/* global VERSION, PRECACHE */
import { forgetSession, refreshStalePages, rememberedSession, send } from "./sender.js";

const SHELL_CACHE = `fieldapp-shell-${VERSION}`;
const PAGES_CACHE = "fieldapp-pages";
const OFFLINE_URL = "/offline";

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(SHELL_CACHE);
    await Promise.all(PRECACHE.map((url) => addWithRetry(cache, url)));
    // The very first install takes over at once; an update waits for the user to say "reload".
    if (!self.registration.active) await self.skipWaiting();
  })());
});

// One dropped request on a weak network must not fail the whole install (the app would then
// not open offline at all): each file gets three tries.
async function addWithRetry(cache, url) {
  for (let attempt = 1; ; attempt += 1) {
    try {
      await cache.add(url);
      return;
    } catch (error) {
      if (attempt >= 3) throw error;
      await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
    }
  }
}

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    const names = await caches.keys();
    await Promise.all(
      names.filter((n) => n.startsWith("fieldapp-shell-") && n !== SHELL_CACHE).map((n) => caches.delete(n)),
    );
    await self.clients.claim();
  })());
});

self.addEventListener("message", (event) => {
  const message = event.data || {};
  if (message.type === "SKIP_WAITING") self.skipWaiting();
  if (message.type === "CLAIM") event.waitUntil(self.clients.claim());
  if (message.type === "FORGET_PAGES") {
    const done = forgetPages().then(() => event.ports[0]?.postMessage({ forgotten: true }));
    event.waitUntil(done);
  }
  if (message.type === "CACHE_PAGES") {
    // The page may pass a port to hear when its pages are safe to open offline.
    const done = cachePages(message.urls || []).then((kept) => event.ports[0]?.postMessage({ kept }));
    event.waitUntil(done);
  }
});

// Background Sync (Chromium): the browser wakes the worker when the network is back, even with
// every page of the app closed. The worker sends with the same code as a page (sender.js) under
// the same Web Lock, so an open page and the worker never send at the same time; open pages
// are then told to show what IndexedDB holds now.
self.addEventListener("sync", (event) => {
  if (event.tag !== "fieldapp-outbox") return;
  event.waitUntil(sendFromWorker());
});

async function sendFromWorker() {
  // A page on screen sends by itself when the network is back (sync.js); the worker sends only
  // for a closed or hidden app, so a test (or a user) watching a page sees that page send.
  const open = await self.clients.matchAll({ type: "window" });
  if (open.some((page) => page.visibilityState === "visible")) return;
  // Written by the logged-in user's pages, removed on the login page: logged out, nothing is
  // sent and nothing is dropped; the records go once that user is back.
  const session = await rememberedSession();
  if (!session) return;
  const result = await send(session);
  if (result.problem) await forgetSession(session); // refused: the records wait for a login
  // A pulled change the offline pages show (a shift moved by the supervisor): the worker keeps
  // the new pages itself, so the guard sees the change offline without opening the app first.
  if (result.ok) await refreshStalePages(session.deviceId, cachePages).catch(() => false);
  const pages = await self.clients.matchAll({ type: "window" });
  pages.forEach((page) => page.postMessage({ type: "SENT", deviceId: session.deviceId, result }));
  // The network or the server failed: a rejected promise makes the browser try again later.
  if (!result.ok && !result.problem) throw new Error("the outbox could not be sent yet");
}

// Bumped when a user logs out: a page fetched for the previous user while the logout happened
// must not land in the cache afterwards.
let pagesGeneration = 0;

async function forgetPages() {
  pagesGeneration += 1;
  await caches.delete(PAGES_CACHE);
}

async function cachePages(urls) {
  const generation = pagesGeneration;
  const cache = await caches.open(PAGES_CACHE);
  const results = await Promise.allSettled(urls.map(async (url) => {
    const response = await fetch(url, { credentials: "same-origin", redirect: "manual" });
    if (!response.ok) throw new Error(`${url}: ${response.status}`);
    if (generation !== pagesGeneration) throw new Error("logged out meanwhile");
    await cache.put(url, response);
  }));
  return results.filter((r) => r.status === "fulfilled").length;
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (url.pathname.startsWith("/api/")) return; // the sync code talks to the network itself
  if (request.mode === "navigate") {
    event.respondWith(pageFromNetworkThenCache(request));
  } else if (url.pathname.startsWith("/static/") || url.pathname === "/manifest.webmanifest") {
    event.respondWith(fromCacheThenNetwork(request));
  }
});

async function pageFromNetworkThenCache(request) {
  const generation = pagesGeneration;
  try {
    const response = await fetch(request);
    if (response.ok && !response.redirected && generation === pagesGeneration) {
      const cache = await caches.open(PAGES_CACHE);
      await cache.put(request.url, response.clone());
    }
    return response;
  } catch {
    const cached = (await caches.match(request.url, { cacheName: PAGES_CACHE }))
      || (await caches.match(request.url, { ignoreSearch: true }));
    return cached || (await caches.match(OFFLINE_URL)) || Response.error();
  }
}

// Static URLs carry the release (/static/v/<version>/...). A page kept offline from an older
// release still names its files: it gets this release's copy rather than nothing.
const VERSIONED = /^\/static\/v\/[^/]+\//;

async function fromCacheThenNetwork(request) {
  const url = new URL(request.url);
  const cached = (await caches.match(request, { ignoreSearch: true }))
    || (VERSIONED.test(url.pathname)
      && (await caches.match(url.pathname.replace(VERSIONED, `/static/v/${VERSION}/`))));
  return cached || fetch(request);
}

// ----- Push notifications (fieldapp/push) ---------------------------------------------------
// Every push shows a notification (browsers punish a push that shows nothing); a tap opens the
// record it is about, in an open window if there is one, even offline (the page cache).
self.addEventListener("push", (event) => {
  event.waitUntil(showPush(event.data));
});

async function showPush(data) {
  let message = {};
  try {
    message = data ? data.json() : {};
  } catch {
    message = { body: data ? data.text() : "" };
  }
  await self.registration.showNotification(message.title || "fieldapp", {
    body: message.body || "",
    icon: `/static/v/${VERSION}/icons/icon-192.png`,
    badge: `/static/v/${VERSION}/icons/icon-192.png`,
    tag: message.tag || undefined, // the same event again replaces its notification
    renotify: Boolean(message.tag && message.alarm),
    requireInteraction: Boolean(message.alarm),
    timestamp: message.at ? Date.parse(message.at) : Date.now(),
    data: { url: pathInApp(message.url), id: message.id || null },
  });
  const pages = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  pages.forEach((page) => page.postMessage({ type: "PUSH_RECEIVED", id: message.id || null }));
}

function pathInApp(url) {
  try {
    const target = new URL(url || "/", self.location.origin);
    return target.origin === self.location.origin ? target.pathname + target.search + target.hash : "/";
  } catch {
    return "/";
  }
}

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const { url = "/", id = null } = event.notification.data || {};
  event.waitUntil(Promise.all([openRecord(url), markRead(id)]));
});

async function openRecord(url) {
  const target = new URL(url, self.location.origin).href;
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  const open = windows.find((w) => w.url === target) || windows[0];
  if (open) {
    try { await open.focus(); } catch { /* focusing needs a user's tap */ }
    if (open.url === target) return open;
    try {
      const navigated = await open.navigate(target);
      if (navigated) return navigated;
    } catch { /* not controlled by this worker: open a new window instead */ }
  }
  return self.clients.openWindow(target);
}

async function markRead(id) {
  if (!id) return;
  try {
    await fetch(`/api/push/notifications/${encodeURIComponent(id)}/read`, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: "{}",
    });
  } catch { /* offline: the inbox shows it unread until it is opened there */ }
}

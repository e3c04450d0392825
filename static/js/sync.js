// When the outbox is sent from an open page: one flush at a time, on every chance the phone
// gets. How it is sent is sender.js, shared with the service worker (Background Sync).
import * as outbox from "./outbox.js";
import { showFreshPage, watchEdits } from "./fresh-page.js";
import { markPagesRefreshed, refreshStalePages, rememberSession, send } from "./sender.js";

const BASE_DELAY_MS = 30_000;
const MAX_DELAY_MS = 5 * 60_000;

let delay = BASE_DELAY_MS;
let timer = null;
let lastProblem = null; // "login" | "revoked" | null: why sending stopped, for the status line

export function deviceId() { return document.body.dataset.deviceId || ""; }
function csrf() { return document.querySelector('meta[name="csrf-token"]')?.content || ""; }

export function flush() {
  const device = deviceId();
  if (!device || !navigator.onLine) return render();
  return send({ deviceId: device, csrf: csrf() }).then(afterSend);
}

async function afterSend(result) {
  await refreshPages().catch(() => {});
  // Also when the worker refreshed them (Background Sync while this page was hidden).
  await showFreshPage(deviceId()).catch(() => {});
  return noteResult(result);
}

function noteResult({ ok, problem }) {
  if (ok) {
    lastProblem = null;
    delay = BASE_DELAY_MS;
  } else {
    if (problem) lastProblem = problem;
    delay = Math.min(delay * 2, MAX_DELAY_MS); // back off while the server is unreachable
  }
  schedule();
  return render();
}

// Today's work for offline use: its data, and the pages the service worker should keep.
export async function fetchDayPack() {
  const device = deviceId();
  if (!device || !navigator.onLine) return;
  const response = await fetch("/api/sync/daypack", { credentials: "same-origin" });
  if (!response.ok) return;
  const pack = await response.json();
  const changes = [];
  for (const [entity, rows] of Object.entries(pack.data)) {
    for (const row of rows) changes.push({ entity, id: String(row.id), deleted: false, data: row });
  }
  await outbox.storeRecords(changes);
  if (!(await outbox.getMeta(`cursor:${device}`))) await outbox.setMeta(`cursor:${device}`, pack.cursor);
  await outbox.setMeta(`daypack_pages:${device}`, pack.pages);
  const kept = await cachePages(pack.pages);
  if (kept === null) return;
  // Today's pages are on the phone: say so (and tests wait for it).
  await outbox.setMeta(`daypack_at:${device}`, Date.now());
  document.documentElement.dataset.offlineReady = String(kept);
  document.dispatchEvent(new CustomEvent("fieldapp:daypack", { detail: { kept, pages: pack.pages.length } }));
}

// Ask the service worker to fetch pages into its cache; resolves how many it kept (null: no
// service worker).
async function cachePages(urls) {
  const registration = await navigator.serviceWorker?.ready;
  if (!registration?.active) return null;
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = (event) => resolve(event.data.kept);
    registration.active.postMessage({ type: "CACHE_PAGES", urls }, [channel.port2]);
  });
}

// A pulled change shown by the offline pages (sender.js PAGE_KINDS, e.g. a guard's shift moved
// by the supervisor) marked them stale: fetch the day pack's pages again, so that offline the
// phone shows the change, without a whole day pack.
async function refreshPages() {
  const device = deviceId();
  const stale = device && (await outbox.getMeta(`pages_stale:${device}`));
  if (!stale || !navigator.onLine) return;
  if (!(await outbox.getMeta(`daypack_pages:${device}`))?.length) {
    await fetchDayPack(); // no day pack yet on this phone: it keeps the pages itself
    await markPagesRefreshed(device);
    if ((await outbox.getMeta(`pages_stale:${device}`)) === stale) await outbox.deleteMeta(`pages_stale:${device}`);
  } else if (!(await refreshStalePages(device, cachePages))) {
    return; // stays stale: tried again at the next sync
  }
  document.documentElement.dataset.pagesRefreshedAt = String(Date.now());
  document.dispatchEvent(new CustomEvent("fieldapp:pages-refreshed"));
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(flush, delay);
}

export async function counts() {
  const device = deviceId();
  const all = device ? await outbox.mutationsOf(device) : [];
  // A photo or signature the server has not confirmed is not "synced", even when its record is.
  const files = device ? (await outbox.unconfirmedFiles(device)).filter((f) => f.blob).length : 0;
  // A photo the server refused needs the user once, until they tap "Noted" on the outbox page.
  const refused = device ? (await outbox.refusedFiles(device)).filter((f) => !f.refused.seen_at).length : 0;
  return {
    waiting: all.filter((m) => outbox.UNSENT.has(m.status)).length,
    files,
    attention: all.filter((m) => m.status === "rejected").length + refused,
    syncedAt: device ? await outbox.getMeta(`synced_at:${device}`) : null,
  };
}

// "All synced · 14:02" or "5 waiting · 1 needs your attention": the words come from the page
// (translated on the server), the numbers from IndexedDB.
export async function render() {
  const element = document.getElementById("sync-status");
  if (!element) return;
  const { waiting, files, attention, syncedAt } = await counts();
  const words = element.dataset;
  const parts = [];
  if (waiting) parts.push(words.waiting.replace("%(n)s", waiting));
  if (files) parts.push(words.files.replace("%(n)s", files));
  if (attention) parts.push(words.attention.replace("%(n)s", attention));
  if (lastProblem === "revoked") parts.push(words.revoked);
  else if (lastProblem === "login") parts.push(words.login);
  if (!parts.length) {
    const time = syncedAt ? new Date(syncedAt).toLocaleTimeString(document.documentElement.lang, { hour: "2-digit", minute: "2-digit" }) : "";
    parts.push(time ? `${words.synced} · ${time}` : words.synced);
  }
  element.textContent = parts.join(" · ");
  element.classList.toggle("attention", Boolean(attention || lastProblem));
  element.classList.toggle("waiting", Boolean(waiting || files));
  document.dispatchEvent(new CustomEvent("fieldapp:synced", { detail: { waiting, attention } }));
}

async function askForPersistentStorage() {
  if (navigator.storage?.persist && !(await navigator.storage.persisted())) {
    await navigator.storage.persist();
  }
  const estimate = await navigator.storage?.estimate?.();
  const warning = document.getElementById("storage-warning");
  if (warning && estimate?.quota) warning.hidden = estimate.usage / estimate.quota < 0.8;
}

export function start() {
  // The service worker sends for this user while no page is open; on the login page nobody is
  // logged in, and the worker must send nothing (the records stay on the phone). Only a page
  // from the server says so: with no network the page may be an older copy from the cache.
  if (navigator.onLine && deviceId()) rememberSession({ deviceId: deviceId(), csrf: csrf() }).catch(() => {});
  else if (navigator.onLine && document.getElementById("login-form")) rememberSession(null).catch(() => {});
  if (!deviceId()) return;
  watchEdits();
  window.addEventListener("online", flush);
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") flush(); });
  // The worker sent (Background Sync): show what IndexedDB now holds.
  navigator.serviceWorker?.addEventListener("message", (event) => {
    if (event.data?.type !== "SENT") return;
    if (event.data.deviceId === deviceId()) afterSend(event.data.result);
    else render();
  });
  document.getElementById("sync-now")?.addEventListener("click", flush);
  askForPersistentStorage().catch(() => {});
  render();
  flush().then(fetchDayPack).catch(() => {});
}

// After a record is saved: send it now if we can, and ask the browser to wake us when the
// network returns (Background Sync, where the browser has it; the timer covers the others).
export async function saved() {
  await render();
  const registration = await navigator.serviceWorker?.ready;
  await registration?.sync?.register("fieldapp-outbox").catch(() => {});
  return flush();
}

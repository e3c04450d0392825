// When and how the outbox is sent: one flush at a time, on every chance the phone gets.
import * as outbox from "./outbox.js";

const BATCH = 100;
const CHUNK = 256 * 1024;
const BASE_DELAY_MS = 30_000;
const MAX_DELAY_MS = 5 * 60_000;

let delay = BASE_DELAY_MS;
let timer = null;
let lastProblem = null; // "login" | "revoked" | null: why sending stopped, for the status line

export function deviceId() { return document.body.dataset.deviceId || ""; }
function csrf() { return document.querySelector('meta[name="csrf-token"]')?.content || ""; }

class Stop extends Error {
  constructor(problem) { super(problem); this.problem = problem; }
}

async function api(method, url, { json, body, headers = {} } = {}) {
  const init = { method, credentials: "same-origin", headers: { "X-CSRFToken": csrf(), ...headers } };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["Content-Type"] = "application/json";
  } else if (body !== undefined) {
    init.body = body;
    init.headers["Content-Type"] = "application/offset+octet-stream";
  }
  const response = await fetch(url, init); // a network failure throws: we are offline
  if (response.status === 401) throw new Stop("login");
  if (response.status === 403) {
    const data = await response.json().catch(() => ({}));
    throw new Stop(data.error === "device_revoked" ? "revoked" : "login");
  }
  return response;
}

// Only one flush runs at a time across every tab of the app (the server is idempotent too;
// both are needed: a flush on "online" and one on load would otherwise send twice).
function exclusive(task) {
  if (navigator.locks) return navigator.locks.request("fieldapp-sync", task);
  exclusive.chain = (exclusive.chain || Promise.resolve()).then(task, task);
  return exclusive.chain;
}

export function flush() {
  const device = deviceId();
  if (!device || !navigator.onLine) return render();
  return exclusive(async () => {
    try {
      await pushMutations(device);
      await uploadFiles(device);
      await pull(device);
      await outbox.prune(device);
      await outbox.setMeta(`synced_at:${device}`, Date.now());
      lastProblem = null;
      delay = BASE_DELAY_MS;
    } catch (error) {
      if (error instanceof Stop) lastProblem = error.problem;
      delay = Math.min(delay * 2, MAX_DELAY_MS); // back off while the server is unreachable
    }
    schedule();
    await render();
  });
}

async function pushMutations(device) {
  for (let round = 0; round < 50; round += 1) {
    const queue = (await outbox.unsent(device)).slice(0, BATCH);
    if (!queue.length) return;
    // From here the records are frozen: an edit becomes a new mutation.
    await outbox.update(queue.map((m) => ({ ...m, status: "sending" })));
    const response = await api("POST", "/api/sync/push", {
      json: {
        device_id: device,
        mutations: queue.map((m) => ({
          id: m.id, seq: m.seq, type: m.type, payload: m.payload,
          device_time: m.device_time, base_version: m.base_version,
        })),
      },
    });
    if (!response.ok) throw new Error(`push answered ${response.status}`);
    const answer = await response.json();
    const byId = new Map(answer.results.map((r) => [r.id, r]));
    let renumber = false;
    const updated = queue.map((m) => {
      const result = byId.get(m.id);
      if (!result || result.status === "retry") { renumber ||= Boolean(result); return { ...m, status: "sending" }; }
      if (result.reason === "stale_sequence") { renumber = true; return { ...m, status: "sending" }; }
      if (result.status === "rejected") {
        return { ...m, status: "rejected", reason: result.reason, message: result.message, fields: result.fields || null };
      }
      return { ...m, status: "synced", conflict: result.status === "conflict", message: result.message || null, version: result.version ?? null };
    });
    await outbox.update(updated);
    if (renumber) await outbox.renumber(device, answer.device_seq);
  }
}

// Files go up in pieces; an interrupted upload resumes from what the server has.
async function uploadFiles(device) {
  for (const file of await outbox.unconfirmedFiles(device)) {
    if (!file.blob) continue;
    const url = `/api/sync/files/${file.sha256}`;
    let response = await api("POST", url, { json: { size: file.size, content_type: file.type } });
    if (!response.ok) continue; // refused (type, size): the record shows the photo as missing
    let state = await response.json();
    let restarts = 0;
    while (!state.complete) {
      const piece = file.blob.slice(state.offset, state.offset + CHUNK);
      response = await api("PATCH", url, { body: piece, headers: { "Upload-Offset": String(state.offset) } });
      const next = await response.json().catch(() => null);
      // 409: the server has a different amount (resume from there); 422: damaged, start over.
      const resumable = response.ok || response.status === 409 || (response.status === 422 && restarts++ < 2);
      if (!resumable || next?.offset === undefined || next.offset === null) break;
      state = { complete: Boolean(next.complete), offset: next.offset };
    }
    if (state.complete) await outbox.confirmFile(file.sha256);
  }
}

async function pull(device) {
  const all = await outbox.mutationsOf(device);
  const waiting = all.filter((m) => outbox.UNSENT.has(m.status) || m.status === "rejected");
  const oldest = waiting.length ? new Date(Math.min(...waiting.map((m) => m.created_at))).toISOString() : "";
  for (let page = 0; page < 20; page += 1) {
    const cursor = (await outbox.getMeta(`cursor:${device}`)) || 0;
    const params = new URLSearchParams({ cursor, device_id: device, pending: waiting.length, oldest_pending: oldest });
    const response = await api("GET", `/api/sync/pull?${params}`);
    if (!response.ok) return;
    const answer = await response.json();
    await outbox.storeRecords(answer.changes);
    await outbox.setMeta(`cursor:${device}`, answer.cursor);
    if (!answer.more) return;
  }
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
  const registration = await navigator.serviceWorker?.ready;
  if (!registration?.active) return;
  const kept = await new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = (event) => resolve(event.data.kept);
    registration.active.postMessage({ type: "CACHE_PAGES", urls: pack.pages }, [channel.port2]);
  });
  // Today's pages are on the phone: say so (and tests wait for it).
  await outbox.setMeta(`daypack_at:${device}`, Date.now());
  document.documentElement.dataset.offlineReady = String(kept);
  document.dispatchEvent(new CustomEvent("fieldapp:daypack", { detail: { kept, pages: pack.pages.length } }));
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
  return {
    waiting: all.filter((m) => outbox.UNSENT.has(m.status)).length,
    files,
    attention: all.filter((m) => m.status === "rejected").length,
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
  if (!deviceId()) return;
  window.addEventListener("online", flush);
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") flush(); });
  navigator.serviceWorker?.addEventListener("message", (event) => { if (event.data?.type === "FLUSH") flush(); });
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

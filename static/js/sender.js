// Sending the outbox to the server: the one code path, used by open pages (sync.js) and by the
// service worker when Background Sync wakes it with no page open (sw.js). No DOM here: what a
// page would read from its document (device ID, CSRF token) is passed in, and kept in the
// outbox database's "meta" store for the worker (rememberSession).
import * as outbox from "./outbox.js";

const BATCH = 100;
const CHUNK = 256 * 1024;
const LOCK = "fieldapp-sync";
const SESSION_KEY = "session";

// What the worker needs to send for the user logged in on this phone. Written by every page
// of a logged-in user, removed by the login page (logged out: the worker sends nothing, and the
// records stay until that user logs in again).
export async function rememberSession(session) {
  if (session?.deviceId && session.csrf) {
    await outbox.setMeta(SESSION_KEY, { deviceId: session.deviceId, csrf: session.csrf });
  } else {
    await outbox.deleteMeta(SESSION_KEY);
  }
}

export async function rememberedSession() {
  return (await outbox.getMeta(SESSION_KEY)) || null;
}

// The server refused that session: stop trying it (unless a page has stored a newer one).
export async function forgetSession(session) {
  const stored = await rememberedSession();
  if (stored?.deviceId === session.deviceId && stored.csrf === session.csrf) await outbox.deleteMeta(SESSION_KEY);
}

class Stop extends Error {
  constructor(problem, data = {}) { super(problem); this.problem = problem; this.data = data; }
}

// Only one send runs at a time across every tab of the app and its service worker (the server
// is idempotent too; both are needed: a flush on "online" and one on load would otherwise send
// twice). Web Locks exist in windows and in workers, for the same origin.
function exclusive(task) {
  if (globalThis.navigator?.locks) return navigator.locks.request(LOCK, task);
  exclusive.chain = (exclusive.chain || Promise.resolve()).then(task, task);
  return exclusive.chain;
}

// Push what is waiting, upload the files, pull what changed. Resolves {ok, problem}: ok when
// everything went through; problem "login" or "revoked" when the server refused this session
// or device (nothing is dropped); neither: the network or the server failed, try again later.
export function send({ deviceId, csrf }) {
  return exclusive(async () => {
    const api = client(csrf);
    try {
      await pushMutations(api, deviceId);
      await uploadFiles(api, deviceId);
      await pull(api, deviceId);
      await outbox.prune(deviceId);
      await outbox.setMeta(`synced_at:${deviceId}`, Date.now());
      return { ok: true, problem: null };
    } catch (error) {
      return { ok: false, problem: error instanceof Stop ? error.problem : null };
    }
  });
}

function client(csrf) {
  return async function api(method, url, { json, body, headers = {} } = {}) {
    // Same origin, with the session cookie: from a page and from the service worker alike.
    const init = { method, credentials: "same-origin", headers: { "X-CSRFToken": csrf, ...headers } };
    if (json !== undefined) {
      init.body = JSON.stringify(json);
      init.headers["Content-Type"] = "application/json";
    } else if (body !== undefined) {
      init.body = body;
      init.headers["Content-Type"] ||= "application/offset+octet-stream";
    }
    const response = await fetch(url, init); // a network failure throws: we are offline
    if (response.status === 401) throw new Stop("login");
    if (response.status === 400) {
      // The session this CSRF token belongs to is gone (logged out, or logged in again since).
      const data = await response.clone().json().catch(() => ({}));
      if (data.error === "csrf") throw new Stop("login");
    }
    if (response.status === 403) {
      const data = await response.json().catch(() => ({}));
      throw new Stop(data.error === "device_revoked" ? "revoked" : "login", data);
    }
    return response;
  };
}

async function pushMutations(api, device) {
  for (let round = 0; round < 50; round += 1) {
    const queue = (await outbox.unsent(device)).slice(0, BATCH);
    if (!queue.length) return;
    // From here the records are frozen: an edit becomes a new mutation.
    await outbox.update(queue.map((m) => ({ ...m, status: "sending" })));
    let response;
    try {
      response = await api("POST", "/api/sync/push", {
        json: {
          device_id: device,
          mutations: queue.map((m) => ({
            id: m.id, seq: m.seq, type: m.type, payload: m.payload,
            device_time: m.device_time, base_version: m.base_version,
          })),
        },
      });
    } catch (error) {
      // A revoked phone: the server kept the batch for the office to review. These records are
      // "held": kept here and shown, never sent again (their files still go up, then we stop).
      if (!(error instanceof Stop) || !error.data.held) throw error;
      await outbox.update(queue.map((m) => ({ ...m, status: "held", message: error.data.message || null })));
      continue;
    }
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

// Answers that are final for a file's bytes (docs/sync-protocol.md): sending the same bytes
// again gets the same answer. 422 hash_mismatch is final only once the restarts are used up.
// Anything else (the network, 5xx, 409, 401/403, a proxy's page) is tried again next time.
const FINAL = {
  413: new Set(["too_large", "too_many_pixels"]),
  415: new Set(["unsupported_type", "not_an_image", "damaged_image"]),
  422: new Set(["hash_mismatch"]),
};
const RESTARTS = 2;

function finalRefusal(response, answer) {
  const reason = answer?.error;
  return FINAL[response.status]?.has(reason) ? reason : null;
}

// Files go up in pieces; an interrupted upload resumes from what the server has. A file that
// fits in one piece (a signature, a small photo) is announced and sent in one request
// ("creation with upload": Upload-Length and its type with the piece); a larger one is
// announced first. A file the server refuses for good is marked so (kept on the phone, shown
// on the outbox page) and is not sent again.
async function uploadFiles(api, device) {
  for (const file of await outbox.unconfirmedFiles(device)) {
    if (!file.blob) continue;
    const url = `/api/sync/files/${file.sha256}`;
    let state = file.size > CHUNK ? await announce(api, url, file) : { complete: false, offset: 0, create: true };
    let restarts = 0;
    let refused = null;
    while (state && !state.complete) {
      const piece = file.blob.slice(state.offset, state.offset + CHUNK);
      const headers = { "Upload-Offset": String(state.offset) };
      if (state.create) Object.assign(headers, { "Upload-Length": String(file.size), "Content-Type": file.type });
      const response = await api("PATCH", url, { body: piece, headers });
      if (state.create && response.status === 404) { // a server from before creation with upload
        state = await announce(api, url, file);
        continue;
      }
      const next = await response.json().catch(() => null);
      // 409: the server has a different amount (resume from there); 422: damaged, start over.
      const resumable = response.ok || response.status === 409 || (response.status === 422 && restarts++ < RESTARTS);
      if (!resumable) { refused = finalRefusal(response, next); break; }
      if (next?.offset === undefined || next.offset === null) break;
      state = { complete: Boolean(next.complete), offset: next.offset };
    }
    if (state?.complete) await outbox.confirmFile(file.sha256);
    else if (refused) await outbox.refuseFile(file.sha256, refused);
  }
}

// POST: the server learns the file's size and type and says how much it has. Null when it
// refused (for good: the file is marked so) or could not answer (tried at the next sync).
async function announce(api, url, file) {
  const response = await api("POST", url, { json: { size: file.size, content_type: file.type } });
  if (response.ok) return response.json();
  const refused = finalRefusal(response, await response.json().catch(() => null));
  if (refused) await outbox.refuseFile(file.sha256, refused);
  return null;
}

// Kinds of pulled change that the offline pages show (the server draws them into the pages the
// day pack keeps, e.g. a guard's shift on the duty page). When one arrives, those pages are
// marked stale and fetched again into the service worker's cache (refreshStalePages: by an
// open page, or by the worker after a background sync). A new kind of that sort needs only its
// name here.
export const PAGE_KINDS = new Set(["patrol_shifts"]);

// Fetch the day pack's pages again if a pulled change marked them stale. ``cachePages(urls)``
// keeps them in the worker's cache (the worker does it itself; a page asks the worker) and
// resolves how many it kept. Resolves true once they are fresh; if any failed they stay marked
// and are tried again at the next sync. False too when the phone has no day pack's page list.
export async function refreshStalePages(device, cachePages) {
  const stale = await outbox.getMeta(`pages_stale:${device}`);
  const urls = stale && (await outbox.getMeta(`daypack_pages:${device}`));
  if (!urls?.length) return false;
  const kept = await cachePages(urls);
  if (kept === null || kept < urls.length) return false;
  await markPagesRefreshed(device);
  // Unless another change marked them stale meanwhile.
  if ((await outbox.getMeta(`pages_stale:${device}`)) === stale) await outbox.deleteMeta(`pages_stale:${device}`);
  return true;
}

// When the worker's cache last got the pages a pulled change had made stale: a page on screen
// drawn before that shows the old version (fresh-page.js), whoever refreshed them.
export function markPagesRefreshed(device) { return outbox.setMeta(`pages_refreshed_at:${device}`, Date.now()); }
export function pagesRefreshedAt(device) { return outbox.getMeta(`pages_refreshed_at:${device}`); }

async function pull(api, device) {
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
    if (answer.changes.some((c) => PAGE_KINDS.has(c.entity))) await outbox.setMeta(`pages_stale:${device}`, Date.now());
    await outbox.setMeta(`cursor:${device}`, answer.cursor);
    if (!answer.more) return;
  }
}

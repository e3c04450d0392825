// The outbox: every record made on this phone, kept in IndexedDB until the server has it.
// A mutation is frozen once its upload starts; changing it afterwards makes a new mutation.
import { openDB } from "../vendor/idb.js";

const DB_NAME = "fieldapp";
const KEEP_SYNCED_MS = 7 * 24 * 3600 * 1000;
let dbPromise;

export function database() {
  dbPromise ??= openDB(DB_NAME, 1, {
    upgrade(db) {
      const mutations = db.createObjectStore("mutations", { keyPath: "id" });
      mutations.createIndex("by_device_seq", ["device_id", "seq"]);
      db.createObjectStore("files", { keyPath: "sha256" });
      db.createObjectStore("meta");
      db.createObjectStore("records", { keyPath: ["entity", "id"] });
    },
  });
  return dbPromise;
}

// UUID version 7: 48 bits of milliseconds, then random bits; sorts by creation time.
export function uuidv7() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  let ms = Date.now();
  for (let i = 5; i >= 0; i -= 1) { bytes[i] = ms % 256; ms = Math.floor(ms / 256); }
  bytes[6] = (bytes[6] & 0x0f) | 0x70;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export const UNSENT = new Set(["pending", "sending"]);

// Save a record on the phone. `files` are {sha256, blob, type} made by capture.js.
export async function enqueue(deviceId, type, payload, { baseVersion = null, files = [], replaces = null } = {}) {
  const db = await database();
  const tx = db.transaction(["mutations", "files", "meta"], "readwrite");
  const meta = tx.objectStore("meta");
  const seq = ((await meta.get(`seq:${deviceId}`)) || 0) + 1;
  await meta.put(seq, `seq:${deviceId}`);
  for (const file of files) {
    const known = await tx.objectStore("files").get(file.sha256);
    if (!known && file.blob) {
      await tx.objectStore("files").put({
        sha256: file.sha256, blob: file.blob, type: file.type, size: file.blob.size,
        device_id: deviceId, confirmed: false,
      });
    }
  }
  const mutation = {
    id: uuidv7(), device_id: deviceId, seq, type, payload,
    device_time: new Date().toISOString(), base_version: baseVersion,
    status: "pending", created_at: Date.now(), files: files.map((f) => f.sha256),
    reason: null, message: null, fields: null,
  };
  await tx.objectStore("mutations").put(mutation);
  if (replaces) {
    const old = await tx.objectStore("mutations").get(replaces);
    if (old) await tx.objectStore("mutations").put({ ...old, status: "replaced", replaced_by: mutation.id });
  }
  await tx.done;
  return mutation;
}

export async function mutationsOf(deviceId) {
  const db = await database();
  const range = IDBKeyRange.bound([deviceId, 0], [deviceId, Number.MAX_SAFE_INTEGER]);
  return db.getAllFromIndex("mutations", "by_device_seq", range);
}

export async function unsent(deviceId) {
  return (await mutationsOf(deviceId)).filter((m) => UNSENT.has(m.status));
}

export async function update(mutations) {
  const db = await database();
  const tx = db.transaction("mutations", "readwrite");
  await Promise.all(mutations.map((m) => tx.store.put(m)));
  await tx.done;
}

// The server is missing numbers or is ahead of this phone (the phone's counter was lost):
// give every unsent mutation a fresh, consecutive number after what the server has.
// Safe because the server stored none of them.
export async function renumber(deviceId, serverSeq) {
  const db = await database();
  const tx = db.transaction(["mutations", "meta"], "readwrite");
  const range = IDBKeyRange.bound([deviceId, 0], [deviceId, Number.MAX_SAFE_INTEGER]);
  const all = await tx.objectStore("mutations").index("by_device_seq").getAll(range);
  let seq = serverSeq;
  for (const m of all.filter((x) => UNSENT.has(x.status))) {
    seq += 1;
    await tx.objectStore("mutations").put({ ...m, seq });
  }
  const counter = (await tx.objectStore("meta").get(`seq:${deviceId}`)) || 0;
  await tx.objectStore("meta").put(Math.max(counter, seq), `seq:${deviceId}`);
  await tx.done;
}

// Files still to go to the server. A file the server refused for good (refuseFile) is not
// waiting any more: it is neither sent again nor counted, but stays (see refusedFiles).
export async function unconfirmedFiles(deviceId) {
  const db = await database();
  return (await db.getAll("files")).filter((f) => f.device_id === deviceId && !f.confirmed && !f.refused);
}

// The server answered that these bytes will never be accepted (damaged, not an image, too
// large...; docs/sync-protocol.md): note why and when, keep the bytes, stop sending them.
export async function refuseFile(sha256, reason) {
  const db = await database();
  const file = await db.get("files", sha256);
  if (file && !file.confirmed) await db.put("files", { ...file, refused: { reason, at: Date.now() } });
}

// The user has seen the refusal: it stays listed but no longer asks for attention.
export async function acknowledgeRefusal(sha256) {
  const db = await database();
  const file = await db.get("files", sha256);
  if (file?.refused) await db.put("files", { ...file, refused: { ...file.refused, seen_at: Date.now() } });
}

// The files of this device the server refused, still on the phone for the user to see.
export async function refusedFiles(deviceId) {
  const db = await database();
  return (await db.getAll("files")).filter((f) => f.device_id === deviceId && f.refused && !f.confirmed);
}

// The server has the whole file: the photo's bytes may now leave the phone.
export async function confirmFile(sha256) {
  const db = await database();
  const file = await db.get("files", sha256);
  if (file) await db.put("files", { sha256, type: file.type, size: file.size, device_id: file.device_id, confirmed: true });
}

export async function getFile(sha256) {
  return (await database()).get("files", sha256);
}

export async function prune(deviceId) {
  const cutoff = Date.now() - KEEP_SYNCED_MS;
  const db = await database();
  // A record one of whose files the server refused stays, so the refusal is shown with it.
  const refused = new Set((await refusedFiles(deviceId)).map((f) => f.sha256));
  const old = (await mutationsOf(deviceId))
    .filter((m) => (m.status === "synced" || m.status === "replaced") && m.created_at < cutoff)
    .filter((m) => !(m.files || []).some((sha256) => refused.has(sha256)));
  const tx = db.transaction("mutations", "readwrite");
  await Promise.all(old.map((m) => tx.store.delete(m.id)));
  await tx.done;
}

export async function getMeta(key) { return (await database()).get("meta", key); }
export async function setMeta(key, value) { return (await database()).put("meta", value, key); }
export async function deleteMeta(key) { return (await database()).delete("meta", key); }

export async function storeRecords(changes) {
  const db = await database();
  const tx = db.transaction("records", "readwrite");
  for (const change of changes) {
    if (change.deleted) await tx.store.delete([change.entity, change.id]);
    else await tx.store.put({ entity: change.entity, id: change.id, data: change.data });
  }
  await tx.done;
}

export async function records(entity) {
  const db = await database();
  return (await db.getAll("records")).filter((r) => r.entity === entity).map((r) => r.data);
}

// The outbox page: everything this phone holds, why a record was refused, and a way to fix it.
import * as outbox from "./outbox.js";
import { deviceId, flush, render as renderStatus, saved } from "./sync.js";

const SHA256 = /^[0-9a-f]{64}$/;

let types = {};

function describe(mutation) {
  return types[mutation.type] || { label: mutation.type, labels: {}, files: [], summary: null };
}

function editableFields(mutation) {
  const { files } = describe(mutation);
  return Object.entries(mutation.payload).filter(([name, value]) =>
    name !== "id" && !files.includes(name)
    && (value === null || ["string", "number", "boolean"].includes(typeof value))
    && !(typeof value === "string" && SHA256.test(value)));
}

// Rejected first (they need the user), then what is waiting, then what the server has.
// A record with a photo the server refused comes first too.
const ORDER = { rejected: 0, pending: 1, sending: 1, held: 2, synced: 3 };

// "Photo refused by the server: damaged image", kept on the phone (files the server refused
// for good are never sent again: sender.js). The words come from the page, in its language.
function refusalNote(file, kind, texts) {
  const reasons = JSON.parse(texts.refusedReasons || "{}");
  const note = document.createElement("p");
  note.className = "field-error file-refused";
  note.dataset.sha256 = file.sha256;
  note.dataset.reason = file.refused.reason;
  const template = kind === "signature" ? texts.refusedSignature : texts.refusedPhoto;
  const when = new Date(file.refused.at).toLocaleString(document.documentElement.lang);
  const reason = reasons[file.refused.reason] || file.refused.reason;
  note.textContent = [template.replace("%(reason)s", reason), when, texts.refusedKept].join(" · ");
  if (!file.refused.seen_at) {
    const noted = document.createElement("button");
    noted.type = "button";
    noted.className = "button secondary refusal-noted";
    noted.textContent = texts.refusedNoted;
    noted.addEventListener("click", async () => {
      await outbox.acknowledgeRefusal(file.sha256);
      await renderStatus(); // the status line, then this list (on "fieldapp:synced")
    });
    note.append(" ", noted);
  }
  return note;
}

// Which of the record's fields holds the file: a signature is drawn, anything else is a photo.
function fileKind(mutation, file) {
  const field = describe(mutation).files.find((name) => {
    const value = mutation.payload[name];
    return value === file.sha256 || (Array.isArray(value) && value.includes(file.sha256));
  });
  if (field) return field.includes("signature") ? "signature" : "photo";
  return file.type === "image/png" ? "signature" : "photo";
}

function fixForm(mutation, texts) {
  const form = document.createElement("form");
  form.className = "fix-form";
  for (const [name, value] of editableFields(mutation)) {
    const label = document.createElement("label");
    label.textContent = describe(mutation).labels[name] || name;
    const input = document.createElement("input");
    input.name = name;
    input.type = typeof value === "number" ? "number" : "text";
    input.value = value ?? "";
    label.htmlFor = input.id = `fix-${mutation.id}-${name}`;
    form.append(label, input);
    const error = mutation.fields?.[name];
    if (error) {
      input.classList.add("invalid");
      const p = document.createElement("p");
      p.className = "field-error";
      p.textContent = error;
      form.append(p);
    }
  }
  const button = document.createElement("button");
  button.type = "submit";
  button.className = "button primary wide";
  button.textContent = texts.resend;
  form.append(button);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const payload = { ...mutation.payload };
    for (const [name, value] of editableFields(mutation)) {
      const raw = form.elements[name].value;
      payload[name] = typeof value === "number" ? (raw === "" ? null : Number(raw)) : raw;
    }
    await outbox.enqueue(deviceId(), mutation.type, payload, {
      baseVersion: mutation.base_version, replaces: mutation.id,
      files: (mutation.files || []).map((sha256) => ({ sha256 })),
    });
    await render();
    await saved();
    await render();
  });
  return form;
}

async function render() {
  const list = document.getElementById("outbox-list");
  if (!list) return;
  const texts = list.dataset;
  types = JSON.parse(texts.recordTypes || "{}");
  const refused = new Map((await outbox.refusedFiles(deviceId())).map((f) => [f.sha256, f]));
  const refusedOf = (m) => (m.files || []).filter((sha256) => refused.has(sha256)).map((sha256) => refused.get(sha256));
  const rank = (m) => (refusedOf(m).length ? 0 : ORDER[m.status] ?? 3);
  const all = (await outbox.mutationsOf(deviceId()))
    .filter((m) => m.status !== "replaced")
    .sort((a, b) => rank(a) - rank(b) || b.seq - a.seq);
  list.replaceChildren();
  const shown = new Set();
  for (const m of all) {
    const item = document.createElement("li");
    item.className = `outbox-item ${m.status}`;
    item.dataset.mutationId = m.id;
    const head = document.createElement("div");
    const title = document.createElement("strong");
    const { label, summary } = describe(m);
    title.textContent = summary && m.payload[summary] ? `${label} · ${m.payload[summary]}` : label;
    const tag = document.createElement("span");
    tag.className = m.status === "rejected" || m.status === "held" ? "tag warn" : m.status === "synced" ? "tag ok" : "tag";
    // Held (a revoked phone handed it to the office): the server's message says so.
    tag.textContent = texts[`status${m.status[0].toUpperCase()}${m.status.slice(1)}`] || (m.status === "held" && m.message) || m.status;
    const when = document.createElement("span");
    when.className = "muted";
    when.textContent = new Date(m.device_time).toLocaleString(document.documentElement.lang);
    head.append(title, " ", tag, " ", when);
    item.append(head);
    if (m.message && tag.textContent !== m.message) {
      const message = document.createElement("p");
      message.className = m.status === "rejected" ? "field-error" : "muted";
      message.textContent = m.message;
      item.append(message);
    }
    for (const file of refusedOf(m)) {
      item.classList.add("file-refused");
      item.append(refusalNote(file, fileKind(m, file), texts));
      shown.add(file.sha256);
    }
    if (m.status === "rejected") item.append(fixForm(m, texts));
    list.append(item);
  }
  // A refused file whose record is gone from the phone is still shown, on its own.
  const orphans = [...refused.values()].filter((f) => !shown.has(f.sha256));
  for (const file of orphans) {
    const item = document.createElement("li");
    item.className = "outbox-item file-refused";
    const title = document.createElement("strong");
    title.textContent = texts.refusedOrphan;
    item.append(title, refusalNote(file, file.type === "image/png" ? "signature" : "photo", texts));
    list.prepend(item);
  }
  document.getElementById("outbox-empty").hidden = all.length + orphans.length > 0;
}

export function start() {
  if (!document.getElementById("outbox-list")) return;
  document.addEventListener("fieldapp:synced", render);
  document.getElementById("outbox-sync-now")?.addEventListener("click", () => flush());
  render();
}

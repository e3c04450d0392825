// The outbox page: everything this phone holds, why a record was refused, and a way to fix it.
import * as outbox from "./outbox.js";
import { deviceId, flush, saved } from "./sync.js";

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
const ORDER = { rejected: 0, pending: 1, sending: 1, held: 2, synced: 3 };

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
  const all = (await outbox.mutationsOf(deviceId()))
    .filter((m) => m.status !== "replaced")
    .sort((a, b) => (ORDER[a.status] ?? 3) - (ORDER[b.status] ?? 3) || b.seq - a.seq);
  list.replaceChildren();
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
    if (m.status === "rejected") item.append(fixForm(m, texts));
    list.append(item);
  }
  document.getElementById("outbox-empty").hidden = all.length > 0;
}

export function start() {
  if (!document.getElementById("outbox-list")) return;
  document.addEventListener("fieldapp:synced", render);
  document.getElementById("outbox-sync-now")?.addEventListener("click", () => flush());
  render();
}

// Field-record forms: one path, online or offline. A <form data-record-type="..."> is not
// posted; its fields become a mutation in the outbox, and the sync engine sends it.
import * as outbox from "./outbox.js";
import { shrinkPhoto, signatureFile, signaturePad } from "./capture.js";
import { deviceId, saved } from "./sync.js";

async function readForm(form) {
  const payload = {};
  const files = [];
  for (const element of form.elements) {
    if (!element.name || element.name === "csrf_token" || element.disabled) continue;
    if (element.type === "file") {
      const refs = [];
      for (const file of element.files) {
        const photo = await shrinkPhoto(file);
        files.push(photo);
        refs.push(photo.sha256);
      }
      payload[element.name] = element.multiple ? refs : (refs[0] ?? null);
    } else if (element.type === "checkbox") {
      payload[element.name] = element.checked;
    } else if (element.type === "radio") {
      if (element.checked) payload[element.name] = element.value;
    } else if (element.type === "number") {
      payload[element.name] = element.value === "" ? null : Number(element.value);
    } else if (element.tagName !== "BUTTON") {
      payload[element.name] = element.value;
    }
  }
  for (const canvas of form.querySelectorAll("canvas[data-signature]")) {
    const signature = await signatureFile(canvas);
    if (signature) files.push(signature);
    payload[canvas.dataset.signature] = signature ? signature.sha256 : null;
  }
  return { payload, files };
}

async function submitRecord(event) {
  event.preventDefault();
  const form = event.currentTarget;
  if (!form.reportValidity()) return;
  const required = [...form.querySelectorAll("canvas[data-signature][data-required]")];
  const unsigned = required.find((canvas) => canvas.signaturePad?.isEmpty());
  if (unsigned) {
    unsigned.closest(".signature")?.classList.add("invalid");
    return;
  }
  const button = form.querySelector("[type=submit]");
  if (button) button.disabled = true;
  try {
    const { payload, files } = await readForm(form);
    const fixed = form.dataset.payload ? JSON.parse(form.dataset.payload) : {};
    payload.id ||= outbox.uuidv7();
    const baseVersion = form.dataset.baseVersion ? Number(form.dataset.baseVersion) : null;
    await outbox.enqueue(deviceId(), form.dataset.recordType, { ...fixed, ...payload }, { files, baseVersion });
    form.reset();
    form.querySelectorAll("canvas[data-signature]").forEach((c) => c.signaturePad?.clear());
    const notice = form.querySelector("[data-saved]");
    if (notice) notice.hidden = false;
    await renderPendingLists();
    saved().then(renderPendingLists);
  } finally {
    if (button) button.disabled = false;
  }
}

// Records still on the phone appear in the lists they belong to, marked as such.
export async function renderPendingLists() {
  const lists = document.querySelectorAll("[data-pending-list]");
  if (!lists.length || !deviceId()) return;
  const mine = await outbox.mutationsOf(deviceId());
  for (const list of lists) {
    list.querySelectorAll("li.pending-record").forEach((li) => li.remove());
    const type = list.dataset.pendingList;
    const label = list.dataset.pendingLabel || "id";
    for (const m of mine.filter((x) => x.type === type && (outbox.UNSENT.has(x.status) || x.status === "rejected"))) {
      const item = document.createElement("li");
      item.className = `pending-record ${m.status}`;
      item.dataset.mutationId = m.id;
      const title = document.createElement("strong");
      title.textContent = String(m.payload[label] ?? m.payload.id);
      const tag = document.createElement("span");
      tag.className = m.status === "rejected" ? "tag warn" : "tag";
      tag.textContent = m.status === "rejected" ? list.dataset.rejectedText : list.dataset.pendingText;
      item.append(title, " ", tag);
      list.prepend(item);
    }
  }
}

export function attachRecordForms() {
  document.querySelectorAll("canvas[data-signature]").forEach((canvas) => {
    signaturePad(canvas);
    canvas.closest(".signature")?.querySelector("[data-clear]")?.addEventListener("click", () => canvas.signaturePad.clear());
  });
  document.querySelectorAll("form[data-record-type]").forEach((form) => form.addEventListener("submit", submitRecord));
  document.addEventListener("fieldapp:synced", renderPendingLists);
  renderPendingLists();
}

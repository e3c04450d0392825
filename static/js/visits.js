// Site visits and complaints on the phone: GPS for check-in/out, and the acceptance slip
// shown the moment a complaint is saved, online or not. forms.js does the saving.
import * as outbox from "./outbox.js";
import { deviceId } from "./sync.js";

// ----- GPS for check-in and check-out: the latest fix goes into the hidden fields ---------
function watchLocation() {
  const forms = document.querySelectorAll("form.gps-form");
  if (!forms.length) return;
  const status = document.querySelector("[data-gps-status]");
  const say = (text) => { if (status) status.textContent = text; };
  if (!("geolocation" in navigator)) { say(status?.dataset.none || ""); return; }
  say(status?.dataset.waiting || "");
  navigator.geolocation.watchPosition(
    (position) => {
      const { latitude, longitude, accuracy } = position.coords;
      for (const form of forms) {
        form.elements.latitude.value = latitude;
        form.elements.longitude.value = longitude;
        form.elements.accuracy.value = Math.round(accuracy);
      }
      say((status?.dataset.found || "").replace("%(m)s", Math.round(accuracy)));
    },
    () => say(status?.dataset.none || ""),
    { enableHighAccuracy: true, maximumAge: 30_000, timeout: 20_000 },
  );
}

// ----- The acceptance slip (承办单) ---------------------------------------------------------
// The record's ID is made here, before saving, so the slip can name it at once. The slip
// number is the organisation's daily register number, which only the server can hand out
// without gaps or doubles; until this phone has synced, the slip says "number pending" and
// shows the reference (the record's ID), which the office can look the complaint up by.
// The page brings a few IDs reserved by the server, each with the QR code of its slip page,
// so a slip taken offline has a QR code too. An ID already in the outbox, already known from
// the server, or used on this page is not used again; when none is left a fresh one is made
// and the slip shows the reference only.
const usedHere = new Set();

async function newId(form) {
  form.elements.id.value = outbox.uuidv7(); // at once; a reserved one replaces it below
  const reserved = [...document.querySelectorAll("[data-reserved-id]")].map((e) => e.dataset.reservedId);
  let taken = new Set(usedHere);
  try {
    const sent = (await outbox.mutationsOf(deviceId())).filter((m) => m.type === "complaint.intake");
    const known = await outbox.records("complaint");
    taken = new Set([...taken, ...sent.map((m) => m.payload.id), ...known.map((c) => c.id)]);
  } catch (error) {
    console.warn("reserved slips unavailable", error);
  }
  const id = reserved.find((r) => !taken.has(r)) || outbox.uuidv7();
  usedHere.add(id);
  form.elements.id.value = id;
}

function showQr(section, id) {
  const target = section.querySelector('[data-slip="qr"]');
  if (!target) return;
  const source = [...document.querySelectorAll("[data-reserved-id]")].find((e) => e.dataset.reservedId === id);
  target.replaceChildren(...(source ? [...source.cloneNode(true).childNodes] : []));
  target.hidden = !source;
}

function fill(section, name, value) {
  const element = section.querySelector(`[data-slip="${name}"]`);
  if (element) element.textContent = value ?? "";
}

async function showSlip(form, section, taken) {
  const find = async () => (await outbox.mutationsOf(deviceId()))
    .find((m) => m.type === "complaint.intake" && m.payload.id === taken.id);
  // forms.js saves asynchronously (photos are shrunk first); wait until it is in the outbox.
  for (let i = 0; i < 100 && !(await find()); i += 1) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const saved = await find();
  if (!saved) return; // not saved (the form was invalid): the form stays as it is
  fill(section, "id", taken.id);
  fill(section, "number", section.dataset.pending);
  fill(section, "client", taken.client);
  fill(section, "complainant", taken.complainant);
  fill(section, "subject", taken.subject);
  fill(section, "request", taken.request);
  fill(section, "at", new Date(saved.device_time).toLocaleString(document.documentElement.lang, { timeZone: section.dataset.tz || undefined }));
  section.querySelector('[data-slip="solved"]').hidden = !taken.solved;
  section.querySelector('[data-slip="link"]').href = `/complaints/${taken.id}/slip`;
  section.dataset.complaintId = taken.id;
  showQr(section, taken.id);
  section.hidden = false;
  form.hidden = true;
  await newId(form);
  await showNumber(section);
  section.scrollIntoView();
}

// Once synced, the server's answer (pulled into IndexedDB) carries the slip number.
async function showNumber(section) {
  const id = section.dataset.complaintId;
  if (!id) return;
  const known = (await outbox.records("complaint")).find((c) => c.id === id);
  if (known?.slip_number) {
    fill(section, "number", known.slip_number);
    section.classList.add("numbered");
  }
}

function complaintForm() {
  const form = document.getElementById("complaint-form");
  const section = document.getElementById("slip-now");
  if (!form || !section) return;
  newId(form);
  form.addEventListener("submit", () => {
    if (!form.checkValidity()) return;
    const site = form.elements.site_id;
    const taken = {
      id: form.elements.id.value,
      client: form.elements.client_name.value || (site.value ? site.selectedOptions[0].textContent : ""),
      complainant: form.elements.complainant.value,
      subject: form.elements.subject.value,
      request: form.elements.request.value,
      solved: form.elements.solved_on_spot.checked,
    };
    showSlip(form, section, taken);
  });
  document.getElementById("another-complaint")?.addEventListener("click", () => {
    section.hidden = true;
    delete section.dataset.complaintId;
    section.classList.remove("numbered");
    form.hidden = false;
    form.querySelector("[data-saved]")?.setAttribute("hidden", "");
  });
  document.addEventListener("fieldapp:synced", () => showNumber(section));
}

watchLocation();
complaintForm();

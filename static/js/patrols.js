// Guard duty on the phone: GPS for sign-in and scans, the round screen (what is left, time
// remaining), checkpoint codes by camera (jsQR) or typed, emergency steps timed one by one.
// Records are saved by forms.js (outbox); this module only fills in and shows.
import * as outbox from "./outbox.js";
import { deviceId } from "./sync.js";

const CODE = /^FA1\.([A-Za-z0-9_-]{1,64})\.([A-Za-z0-9_-]{1,64})\.([A-Z2-7]{16})$/;

// ----- GPS: every form with [data-gps] inputs gets the latest fix (or stays empty) ----------
function watchGps() {
  const inputs = document.querySelectorAll("input[data-gps]");
  if (!inputs.length || !("geolocation" in navigator)) return;
  const fill = (position) => {
    const { latitude, longitude, accuracy } = position.coords;
    const values = { latitude, longitude, accuracy: Math.round(accuracy) };
    document.querySelectorAll("input[data-gps]").forEach((input) => {
      input.value = String(values[input.dataset.gps]);
      input.defaultValue = input.value; // a form reset after saving keeps the fix
    });
  };
  navigator.geolocation.watchPosition(fill, () => {}, { enableHighAccuracy: true, maximumAge: 30_000 });
}

// ----- emergency steps (PAT-12): each button stamps its step with the phone's time --------
function attachSteps() {
  document.querySelectorAll("[data-step-button]").forEach((button) => {
    const name = button.dataset.stepButton;
    const form = button.closest("form");
    button.addEventListener("click", () => {
      const now = new Date();
      form.elements[name].value = now.toISOString();
      const label = form.querySelector(`[data-step-time="${name}"]`);
      if (label) label.textContent = now.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      button.classList.add("done");
    });
    form.addEventListener("reset", () => {
      button.classList.remove("done");
      const label = form.querySelector(`[data-step-time="${name}"]`);
      if (label) label.textContent = "";
    });
  });
}

async function myMutations(type) {
  const device = deviceId();
  if (!device) return [];
  const all = await outbox.mutationsOf(device);
  return all.filter((m) => m.type === type && m.status !== "rejected" && m.status !== "replaced");
}

// ----- the round screen -------------------------------------------------------------------
function parseCode(text) {
  const match = CODE.exec(String(text).replace(/\s+/g, ""));
  return match ? { site: match[1], checkpoint: match[2] } : null;
}

function format(template, n) {
  return template.replace("%(n)s", String(n));
}

async function renderRound(section, data) {
  const now = Date.now();
  const scans = data.scans.map((s) => ({ id: s.id, code: s.code, at: Date.parse(s.at) }));
  const known = new Set(scans.map((s) => s.id));
  for (const m of await myMutations("patrol.scan")) {
    if (known.has(m.payload.id) || Number(m.payload.shift_id) !== data.shift_id) continue;
    const parsed = parseCode(m.payload.code);
    if (parsed && parsed.site === data.site_id) scans.push({ id: m.payload.id, code: parsed.checkpoint, at: Date.parse(m.device_time) });
  }
  const rounds = data.rounds.map((r) => ({ n: r.n, start: Date.parse(r.start), end: Date.parse(r.end), until: Date.parse(r.until) }));
  // The round the guard is walking: the last one started (scans count until the next starts).
  const current = rounds.filter((r) => r.start <= now).pop();
  const title = section.querySelector("#round-title");
  const time = section.querySelector("#round-time");
  const left = section.querySelector("#round-left");
  const done = section.querySelector("#round-done");
  left.replaceChildren();
  done.replaceChildren();
  const endForm = document.getElementById("end-round-form");
  if (!current) {
    time.textContent = section.dataset.textNone;
    if (endForm) endForm.hidden = true;
    return;
  }
  title.textContent = format(section.dataset.textRound, current.n);
  const scanned = new Map();
  for (const s of scans.sort((a, b) => a.at - b.at)) {
    if (s.at >= current.start && s.at <= current.until && !scanned.has(s.code)) scanned.set(s.code, s.at);
  }
  const remaining = data.codes.filter((code) => !scanned.has(code));
  const minutes = Math.max(0, Math.ceil((current.end - now) / 60_000));
  time.textContent = remaining.length === 0
    ? section.dataset.textDone
    : (current.end > now ? format(section.dataset.textLeft, minutes) : section.dataset.textOver);
  // A round closed with checkpoints left asks for a reason (the server insists too).
  if (endForm) {
    const ended = (data.ended_early || []).includes(current.n) || (await myMutations("patrol.round_ended_early")).some(
      (m) => Number(m.payload.shift_id) === data.shift_id && Number(m.payload.round_number) === current.n);
    endForm.elements.round_number.value = String(current.n);
    endForm.hidden = remaining.length === 0 && !ended;
    endForm.querySelector("#end-round-controls").hidden = ended;
    endForm.querySelector("[data-saved]").hidden = !ended;
  }
  for (const code of remaining) {
    const item = document.createElement("li");
    item.dataset.code = code;
    item.textContent = `${code} · ${data.names[code] || ""}`;
    left.append(item);
  }
  for (const [code, at] of scanned) {
    const item = document.createElement("li");
    item.dataset.code = code;
    item.className = "scanned";
    item.textContent = `${code} · ${data.names[code] || ""} · ${new Date(at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}`;
    done.append(item);
  }
}

function attachRound() {
  const section = document.getElementById("round");
  if (!section || !section.dataset.round || section.dataset.round === "null") return;
  const data = JSON.parse(section.dataset.round);
  const form = document.getElementById("scan-form");
  const error = document.getElementById("scan-error");
  const render = () => renderRound(section, data).catch((e) => console.warn("round", e));
  // Runs before forms.js saves the scan: a code that is not ours, or another site's, is
  // refused here already (the server checks the signature again).
  form.addEventListener("submit", (event) => {
    const parsed = parseCode(form.elements.code.value);
    const problem = !parsed ? section.dataset.textNotCode
      : parsed.site !== data.site_id ? section.dataset.textWrongSite : "";
    error.hidden = !problem;
    error.textContent = problem;
    if (problem) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, { capture: true });
  form.addEventListener("submit", () => setTimeout(render, 300));
  // The camera marks its scan as not typed; a hidden input keeps what a script set through a
  // form reset, so the next code is typed again unless the camera says otherwise.
  form.addEventListener("reset", () => { form.elements.manual.value = "true"; });
  document.getElementById("end-round-form")?.addEventListener("submit", () => setTimeout(render, 300));
  document.addEventListener("fieldapp:synced", render);
  document.getElementById("camera-start")?.addEventListener("click", () => startCamera(form));
  render();
  setInterval(render, 30_000);
}

// ----- camera scanning (jsQR on video frames) ---------------------------------------------
async function startCamera(form) {
  const box = document.getElementById("camera-box");
  const video = document.getElementById("camera");
  if (!window.jsQR || !navigator.mediaDevices?.getUserMedia) return;
  const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
  video.srcObject = stream;
  box.hidden = false;
  await video.play();
  const canvas = document.createElement("canvas");
  const context = canvas.getContext("2d", { willReadFrequently: true });
  const stop = () => {
    stream.getTracks().forEach((track) => track.stop());
    box.hidden = true;
  };
  const look = () => {
    if (!video.videoWidth) return setTimeout(look, 200);
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    context.drawImage(video, 0, 0);
    const image = context.getImageData(0, 0, canvas.width, canvas.height);
    const found = window.jsQR(image.data, image.width, image.height, { inversionAttempts: "dontInvert" });
    if (found && parseCode(found.data)) {
      stop();
      form.elements.code.value = found.data;
      form.elements.manual.value = "false";
      form.requestSubmit();
      return undefined;
    }
    return setTimeout(look, 250);
  };
  look();
}

// ----- gate register and handover: what is still on the phone counts too -------------------
async function showPendingGate() {
  const exits = new Set((await myMutations("patrol.gate_exit")).map((m) => m.payload.entry_id));
  document.querySelectorAll("form[data-record-type='patrol.gate_exit']").forEach((form) => {
    const entry = JSON.parse(form.dataset.payload).entry_id;
    if (exits.has(entry)) form.closest("li")?.classList.add("left");
  });
  const visitors = document.querySelector("textarea[data-visitors-inside]");
  if (visitors && !visitors.dataset.filled) {
    visitors.dataset.filled = "1";
    const lines = (await myMutations("patrol.gate_entry"))
      .filter((m) => m.payload.entry_kind === "visitor" && !exits.has(m.payload.id) && m.status !== "sent")
      .map((m) => `${m.payload.name} ${m.payload.organisation || ""}`.trim());
    const text = visitors.value.trim();
    if (lines.length) visitors.value = [text, ...lines].filter(Boolean).join("\n");
    visitors.defaultValue = visitors.value;
  }
}

function attachGate() {
  if (!document.querySelector("form[data-record-type='patrol.gate_exit'], textarea[data-visitors-inside]")) return;
  document.querySelectorAll("form[data-record-type='patrol.gate_exit']").forEach((form) => {
    form.addEventListener("submit", () => setTimeout(showPendingGate, 300));
  });
  showPendingGate().catch((e) => console.warn("gate", e));
}

watchGps();
attachSteps();
attachRound();
attachGate();

// The courier's pages: GPS stamped on records, countdowns to the promised time, goods ticked
// or scanned against the slip, the cash difference, and what this phone recorded but has not
// sent yet (the cached page cannot know it; the outbox does).
import * as outbox from "./outbox.js";
import { deviceId } from "./sync.js";

// ----- GPS: read while the page is open, stamped into each form's hidden fields ------------
function stampPosition(position) {
  const { latitude, longitude, accuracy } = position.coords;
  const values = { latitude, longitude, accuracy: Math.round(accuracy) };
  document.querySelectorAll("input[data-gps]").forEach((input) => {
    input.value = String(values[input.dataset.gps] ?? "");
  });
  const status = document.querySelector("[data-gps-status]");
  if (status) status.dataset.fix = "ok";
}

function watchPosition() {
  if (!document.querySelector("input[data-gps]") || !navigator.geolocation) return;
  navigator.geolocation.watchPosition(stampPosition, () => {
    const status = document.querySelector("[data-gps-status]");
    if (status) status.dataset.fix = "none";
  }, { enableHighAccuracy: true, maximumAge: 30_000, timeout: 20_000 });
}

// ----- countdowns -----------------------------------------------------------------------------
function renderCountdowns() {
  const now = Date.now();
  document.querySelectorAll("[data-deadline]").forEach((element) => {
    const minutes = Math.round((Date.parse(element.dataset.deadline) - now) / 60_000);
    const late = minutes < 0;
    const abs = Math.abs(minutes);
    const text = late ? element.dataset.textLate : element.dataset.textLeft;
    element.textContent = text.replace("%(h)s", Math.floor(abs / 60)).replace("%(m)s", abs % 60);
    element.classList.toggle("late", late);
    element.classList.toggle("soon", !late && minutes < 60);
  });
}

// ----- money as typed: yuan text -> integer fen (no floats) ---------------------------------
function toFen(text) {
  const match = /^\s*(\d{1,9})(?:\.(\d{0,2}))?\s*$/.exec(text || "");
  if (!match) return null;
  return Number(match[1]) * 100 + Number((match[2] || "").padEnd(2, "0"));
}

function yuan(fen) {
  const sign = fen < 0 ? "-" : "";
  const abs = Math.abs(fen);
  return `${sign}¥${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, "0")}`;
}

function showDifference(output, difference) {
  if (!output) return;
  if (difference === null) { output.hidden = true; return; }
  output.hidden = false;
  const words = output.dataset;
  const text = difference === 0 ? words.textEven : (difference > 0 ? words.textOver : words.textShort);
  output.textContent = text.replace("%(amount)s", yuan(Math.abs(difference)));
  output.classList.toggle("warn", difference !== 0);
}

// ----- the proof form: ticks, scans, cash, damage --------------------------------------------
function prepareProofForm(form) {
  const ticks = [...form.querySelectorAll("input.item-tick")];
  const hidden = form.elements.checked_codes;
  const scanned = form.elements.scanned_codes;
  const warning = form.querySelector("[data-code-warning]");
  const warningText = warning?.textContent || "";
  const slipCodes = new Set(ticks.map((t) => t.dataset.code));
  const sync = () => { hidden.value = ticks.filter((t) => t.checked).map((t) => t.dataset.code).join(" "); };
  ticks.forEach((t) => t.addEventListener("change", sync));
  scanned?.addEventListener("input", () => {
    const codes = scanned.value.split(/[\s,，;；]+/).filter(Boolean);
    ticks.forEach((t) => { if (codes.includes(t.dataset.code)) t.checked = true; });
    sync();
    const strangers = codes.filter((c) => !slipCodes.has(c));
    if (warning) {
      warning.hidden = !strangers.length;
      warning.textContent = warningText.replace("%(codes)s", strangers.join(", "));
    }
  });
  form.addEventListener("reset", () => setTimeout(sync, 0));

  const cash = form.querySelector("[data-amount-due]");
  if (cash) {
    const due = Number(cash.dataset.amountDue);
    const input = form.elements.cash_received;
    input.addEventListener("input", () => {
      const fen = toFen(input.value);
      showDifference(cash.querySelector("[data-cash-diff]"), fen === null ? null : fen - due);
    });
  }
  const damage = form.querySelector("[data-damage]");
  form.querySelectorAll("input[name=condition]").forEach((radio) => radio.addEventListener("change", () => {
    damage.hidden = form.elements.condition.value !== "damage";
    form.elements.damage_quantity.required = !damage.hidden;
  }));
}

// ----- camera scanning: jsQR on video frames; each code read goes into the typed field ------
function prepareScanner(form) {
  const box = form.querySelector("[data-scanner]");
  if (!box) return;
  const words = box.dataset;
  const status = box.querySelector("[data-scan-status]");
  const view = box.querySelector("[data-scan-box]");
  const video = box.querySelector("[data-scan-video]");
  const startButton = box.querySelector("[data-scan-start]");
  const input = form.elements.scanned_codes;
  const ticks = [...form.querySelectorAll("input.item-tick")];
  const say = (text, code = "") => {
    status.textContent = text.replace("%(code)s", code).replace("%(ticket)s", code);
  };
  let stream = null;
  let timer = null;
  let last = "";
  const stop = () => {
    clearTimeout(timer);
    stream?.getTracks().forEach((track) => track.stop());
    stream = null;
    view.hidden = true;
    startButton.hidden = false;
  };
  const take = (raw) => {
    const code = raw.trim();
    if (!code || code === last) return;
    last = code;
    navigator.vibrate?.(60);
    if (code === words.ticket) { say(words.textSlip, code); return; }
    const codes = input.value.split(/[\s,，;；]+/).filter(Boolean);
    if (codes.includes(code)) { say(words.textAgain, code); return; }
    input.value = [...codes, code].join(" ");
    input.dispatchEvent(new Event("input", { bubbles: true }));
    say(words.textScanned, code);
    if (ticks.length && ticks.every((t) => t.checked)) {
      stop();
      say(words.textAll);
    }
  };
  const canvas = document.createElement("canvas");
  const context = canvas.getContext("2d", { willReadFrequently: true });
  const look = () => {
    if (!stream) return;
    if (video.videoWidth) {
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      context.drawImage(video, 0, 0);
      const image = context.getImageData(0, 0, canvas.width, canvas.height);
      const found = window.jsQR(image.data, image.width, image.height, { inversionAttempts: "attemptBoth" });
      if (found?.data) take(found.data);
    }
    timer = setTimeout(look, 200);
  };
  startButton.addEventListener("click", async () => {
    if (!window.jsQR || !navigator.mediaDevices?.getUserMedia) { say(words.textNoCamera); return; }
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
    } catch (error) {
      say(error?.name === "NotAllowedError" ? words.textDenied : words.textNoCamera);
      return;
    }
    last = "";
    video.srcObject = stream;
    view.hidden = false;
    startButton.hidden = true;
    status.textContent = "";
    await video.play().catch(() => {});
    look();
  });
  box.querySelector("[data-scan-stop]").addEventListener("click", stop);
  form.addEventListener("submit", stop);
  window.addEventListener("pagehide", stop);
}

// ----- end of day: cash collected incl. this phone's records, returns as JSON -----------------
function prepareDayClose(form) {
  const hidden = form.elements.returned;
  const inputs = [...form.querySelectorAll("input[data-returned-code]")];
  const sync = () => {
    const counts = {};
    inputs.forEach((i) => { counts[i.dataset.returnedCode] = Math.max(0, Number(i.value || 0) | 0); });
    hidden.value = JSON.stringify(counts);
  };
  inputs.forEach((i) => i.addEventListener("input", sync));
  sync();
  form.addEventListener("submit", sync, { capture: true });
}

async function phoneRecords() {
  const device = deviceId();
  if (!device) return [];
  const all = await outbox.mutationsOf(device);
  return all.filter((m) => m.type.startsWith("delivery.") && (outbox.UNSENT.has(m.status) || m.status === "rejected"));
}

async function addPhoneCash(section) {
  const stops = new Set((section.dataset.stopIds || "").split(" "));
  const pending = (await phoneRecords()).filter((m) => m.type === "delivery.proof" && m.status !== "rejected" && stops.has(m.payload.stop_id));
  const collected = section.querySelector("[data-collected]");
  let fen = Number(collected.dataset.collectedFen);
  for (const m of pending) fen += toFen(m.payload.cash_received) || 0;
  collected.textContent = yuan(fen).slice(1);
  collected.dataset.totalFen = String(fen);
  section.querySelector("[data-collected-pending]").hidden = !pending.length;
  const form = section.querySelector(".handover-form");
  if (form) {
    const input = form.elements.deposited;
    const update = () => {
      const deposited = toFen(input.value);
      showDifference(form.querySelector("[data-handover-diff]"), deposited === null ? null : deposited - fen);
    };
    input.oninput = update;
    update();
  }
}

// ----- what this phone already recorded for each stop -----------------------------------------
async function showPhoneProgress() {
  const records = await phoneRecords();
  const labels = document.getElementById("outbox-state-labels")?.dataset || {};
  const byStop = new Map();
  for (const m of records) {
    if (!m.payload.stop_id || m.status === "rejected") continue;
    const kind = m.type.split(".")[1];
    const seen = byStop.get(m.payload.stop_id) || new Set();
    seen.add(kind);
    byStop.set(m.payload.stop_id, seen);
  }
  // Today's list: a stop done on this phone shows it, even before the server knows.
  document.querySelectorAll("li.stop[data-stop-id]").forEach((li) => {
    const seen = byStop.get(li.dataset.stopId);
    if (!seen) return;
    const kind = seen.has("proof") ? "proof" : seen.has("refusal") ? "refusal" : "arrival";
    const tag = li.querySelector("[data-stop-state]");
    if (tag && labels[kind]) tag.textContent = labels[kind];
    li.classList.add(`phone-${kind}`);
  });
  // The stop page: hide what is already done here, say so.
  const head = document.querySelector(".stop-head[data-stop-id]");
  if (!head) return;
  // Earlier stops this phone already finished are not skipped: no reason needed for them.
  const order = document.querySelector("[data-out-of-order]");
  if (order) {
    const finishedHere = (id) => ["proof", "refusal"].some((k) => byStop.get(id)?.has(k));
    const stillOpen = order.dataset.earlierOpen.split(" ").filter((id) => id && !finishedHere(id));
    const input = order.querySelector("input");
    order.hidden = !stillOpen.length;
    input.required = Boolean(stillOpen.length);
    input.disabled = !stillOpen.length;
  }
  const seen = byStop.get(head.dataset.stopId) || new Set();
  const progress = head.querySelector("[data-stop-progress]");
  const arrive = document.getElementById("arrive-form");
  if (arrive && seen.has("arrival")) arrive.closest("section").hidden = true;
  const finished = seen.has("proof") || seen.has("refusal");
  if (finished) {
    document.getElementById("proof-form")?.closest("section")?.setAttribute("hidden", "");
    document.getElementById("refusal-form")?.closest("section")?.setAttribute("hidden", "");
  }
  if (progress && seen.size) {
    progress.hidden = false;
    progress.textContent = [...seen].map((k) => progress.dataset[k] || k).join(" · ");
  }
}

function start() {
  watchPosition();
  renderCountdowns();
  setInterval(renderCountdowns, 30_000);
  document.querySelectorAll("#proof-form").forEach(prepareProofForm);
  document.querySelectorAll("#proof-form").forEach(prepareScanner);
  document.querySelectorAll(".day-close-form").forEach(prepareDayClose);
  const refreshers = () => {
    showPhoneProgress().catch(() => {});
    document.querySelectorAll(".end-of-day[data-route-id]").forEach((s) => addPhoneCash(s).catch(() => {}));
  };
  refreshers();
  document.addEventListener("fieldapp:synced", refreshers);
}

start();

// Photos and signatures: shrunk on the phone, addressed by their SHA-256.
import SignaturePad from "../vendor/signature_pad.js";

const MAX_SIDE = 1600;

export async function sha256Hex(blob) {
  const digest = await crypto.subtle.digest("SHA-256", await blob.arrayBuffer());
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

// A phone camera photo is 3–12 MB; its longest side goes down to 1600 px as JPEG.
export async function shrinkPhoto(file) {
  const bitmap = await createImageBitmap(file);
  const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(bitmap.width * scale);
  canvas.height = Math.round(bitmap.height * scale);
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close?.();
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.82));
  return { blob, type: "image/jpeg", sha256: await sha256Hex(blob) };
}

export function signaturePad(canvas) {
  const ratio = Math.max(window.devicePixelRatio || 1, 1);
  canvas.width = canvas.offsetWidth * ratio;
  canvas.height = canvas.offsetHeight * ratio;
  canvas.getContext("2d").scale(ratio, ratio);
  const pad = new SignaturePad(canvas, { backgroundColor: "rgb(255,255,255)" });
  canvas.signaturePad = pad;
  return pad;
}

export async function signatureFile(canvas) {
  const pad = canvas.signaturePad;
  if (!pad || pad.isEmpty()) return null;
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
  return { blob, type: "image/png", sha256: await sha256Hex(blob) };
}

"""Signed checkpoint QR codes for patrol rounds (PAT-03).

A checkpoint sheet carries a payload ``FA1.<site_id>.<checkpoint_id>.<mac>``:

- ``FA1`` names the format, so a later format can be told apart.
- ``site_id`` and ``checkpoint_id`` are 1-64 characters of ``A-Z a-z 0-9 _ -``; the dot is the
  separator and may not appear inside them, so the signed text is unambiguous.
- ``mac`` is HMAC-SHA256(secret, ``"FA1.<site_id>.<checkpoint_id>"``), base32 (RFC 4648, upper
  case, no padding), truncated to the first 16 characters = 80 bits.

Why 80 bits is enough: the MAC only has to stop a guard from *making* a valid code for a
checkpoint they did not visit. The secret never leaves the server, so a forger can only guess and
submit scans; at 2^-80 per guess that is hopeless, and it is well above the 64-bit minimum NIST
SP 800-107 suggests for truncated HMACs. Sixteen characters keep the QR code small enough to
print on a weatherproof sticker and still scan in poor light. Base32 avoids look-alike letters
when someone reads a code aloud to the office.

Errors carry a stable ``code``: ``malformed`` (not a payload of ours), ``bad_signature`` (edited
or forged), ``wrong_site`` (a genuine code from another site, e.g. a photocopy of its sheet). The
signature is checked before the site, so an edited site field is ``bad_signature``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from enum import StrEnum

PAYLOAD_VERSION = "FA1"
MAC_CHARS = 16  # 16 base32 characters x 5 bits = 80 bits, see the module docstring
MIN_SECRET_BYTES = 16  # a shorter key would be the weak point, not the truncated MAC
MAX_PAYLOAD_CHARS = 200  # longer input is not ours; do not spend regex time on it

_ID = r"[A-Za-z0-9_-]{1,64}"
_ID_RE = re.compile(_ID)
_PAYLOAD_RE = re.compile(
    rf"{PAYLOAD_VERSION}\.(?P<site>{_ID})\.(?P<checkpoint>{_ID})\.(?P<mac>[A-Z2-7]{{{MAC_CHARS}}})"
)


class QRErrorCode(StrEnum):
    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad_signature"
    WRONG_SITE = "wrong_site"


class QRCodeInvalid(ValueError):
    """A scanned checkpoint code was rejected; ``code`` is a :class:`QRErrorCode`."""

    def __init__(self, code: QRErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class VerifiedCheckpoint:
    site_id: str
    checkpoint_id: str


def _mac(secret: bytes, site_id: str, checkpoint_id: str) -> str:
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the QR secret must be at least {MIN_SECRET_BYTES} bytes")
    message = f"{PAYLOAD_VERSION}.{site_id}.{checkpoint_id}".encode("ascii")
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return base64.b32encode(digest).decode("ascii")[:MAC_CHARS]


def sign_checkpoint(secret: bytes, site_id: str, checkpoint_id: str) -> str:
    """The text to print as a checkpoint's QR code (format in the module docstring)."""
    for name, value in (("site_id", site_id), ("checkpoint_id", checkpoint_id)):
        if not _ID_RE.fullmatch(value):
            raise ValueError(f"{name} must be 1-64 characters of A-Z, a-z, 0-9, _ or -")
    return f"{PAYLOAD_VERSION}.{site_id}.{checkpoint_id}.{_mac(secret, site_id, checkpoint_id)}"


def verify_checkpoint(secret: bytes, payload: str, expected_site_id: str) -> VerifiedCheckpoint:
    """Check a scanned payload; raise :class:`QRCodeInvalid` unless it is a genuine code of
    ``expected_site_id``. Surrounding whitespace (some scanners add a newline) is ignored."""
    if not isinstance(payload, str) or len(payload) > MAX_PAYLOAD_CHARS:
        raise QRCodeInvalid(QRErrorCode.MALFORMED, "not a fieldapp checkpoint code")
    match = _PAYLOAD_RE.fullmatch(payload.strip())
    if match is None:
        raise QRCodeInvalid(QRErrorCode.MALFORMED, "not a fieldapp checkpoint code")
    site_id, checkpoint_id = match["site"], match["checkpoint"]
    # Constant-time comparison: timing must not reveal how many leading characters were right.
    if not hmac.compare_digest(_mac(secret, site_id, checkpoint_id), match["mac"]):
        raise QRCodeInvalid(QRErrorCode.BAD_SIGNATURE, "checkpoint code has been altered")
    if site_id != expected_site_id:
        raise QRCodeInvalid(QRErrorCode.WRONG_SITE, "checkpoint code belongs to another site")
    return VerifiedCheckpoint(site_id, checkpoint_id)

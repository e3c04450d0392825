"""Signed checkpoint QR payloads: valid, wrong site, tampered, malformed."""

import base64
import hashlib
import hmac

import pytest

from fieldapp.rules.qrcodes import (
    QRCodeInvalid,
    QRErrorCode,
    VerifiedCheckpoint,
    sign_checkpoint,
    verify_checkpoint,
)

SECRET = b"0123456789abcdef0123456789abcdef"
SITE = "site-7"
OTHER_SITE = "site-8"


def _swap_char(text: str, index: int) -> str:
    """Change one character to another of the same alphabet (base32 upper case or an id char)."""
    old = text[index]
    new = "B" if old != "B" else "C"
    return text[:index] + new + text[index + 1 :]


def test_payload_format_matches_the_documented_spec():
    # Spelled out independently: HMAC-SHA256 over "FA1.site-7.CP01", base32, first 16 chars.
    digest = hmac.new(SECRET, b"FA1.site-7.CP01", hashlib.sha256).digest()
    expected_mac = base64.b32encode(digest).decode()[:16]
    assert sign_checkpoint(SECRET, SITE, "CP01") == f"FA1.site-7.CP01.{expected_mac}"


def test_signing_is_deterministic_and_differs_per_checkpoint_and_secret():
    assert sign_checkpoint(SECRET, SITE, "CP01") == sign_checkpoint(SECRET, SITE, "CP01")
    assert sign_checkpoint(SECRET, SITE, "CP01") != sign_checkpoint(SECRET, SITE, "CP02")
    assert sign_checkpoint(SECRET, SITE, "CP01") != sign_checkpoint(b"x" * 32, SITE, "CP01")


@pytest.mark.parametrize("checkpoint", ["CP01", "gate_north", "B-2-stairwell", "x"])
def test_valid_payload_verifies(checkpoint):
    payload = sign_checkpoint(SECRET, SITE, checkpoint)
    assert verify_checkpoint(SECRET, payload, SITE) == VerifiedCheckpoint(SITE, checkpoint)


def test_trailing_newline_from_scanner_is_tolerated():
    payload = sign_checkpoint(SECRET, SITE, "CP01") + "\n"
    assert verify_checkpoint(SECRET, payload, SITE).checkpoint_id == "CP01"


def _payload_for(kind: str) -> str:
    good = sign_checkpoint(SECRET, SITE, "CP01")
    other_site = sign_checkpoint(SECRET, OTHER_SITE, "CP01")
    mac = good.rsplit(".", 1)[1]
    return {
        "photocopy-of-other-site": other_site,
        "mac-last-char-changed": _swap_char(good, len(good) - 1),
        "mac-first-char-changed": _swap_char(good, len(good) - 16),
        "checkpoint-edited": good.replace("CP01", "CP02"),
        "other-site-relabelled": other_site.replace(OTHER_SITE, SITE),
        "signed-with-other-secret": sign_checkpoint(b"y" * 32, SITE, "CP01"),
        "empty": "",
        "random-text": "hello",
        "url": "https://example.com/checkpoint/CP01",
        "wrong-version": good.replace("FA1.", "FA2.", 1),
        "missing-mac": good.rsplit(".", 1)[0],
        "extra-part": good + ".X",
        "mac-lower-case": good.rsplit(".", 1)[0] + "." + mac.lower(),
        "mac-too-short": good[:-1],
        "huge": "FA1." + "a" * 500,
    }[kind]


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("photocopy-of-other-site", "wrong_site"),
        ("mac-last-char-changed", "bad_signature"),
        ("mac-first-char-changed", "bad_signature"),
        ("checkpoint-edited", "bad_signature"),
        ("other-site-relabelled", "bad_signature"),
        ("signed-with-other-secret", "bad_signature"),
        ("empty", "malformed"),
        ("random-text", "malformed"),
        ("url", "malformed"),
        ("wrong-version", "malformed"),
        ("missing-mac", "malformed"),
        ("extra-part", "malformed"),
        ("mac-lower-case", "malformed"),
        ("mac-too-short", "malformed"),
        ("huge", "malformed"),
    ],
)
def test_invalid_payloads_are_rejected_with_a_stable_code(kind, code):
    with pytest.raises(QRCodeInvalid) as caught:
        verify_checkpoint(SECRET, _payload_for(kind), SITE)
    assert caught.value.code == code
    assert isinstance(caught.value, ValueError)


def test_non_text_payload_is_malformed():
    with pytest.raises(QRCodeInvalid) as caught:
        verify_checkpoint(SECRET, b"FA1.site-7.CP01.AAAAAAAAAAAAAAAA", SITE)  # type: ignore[arg-type]
    assert caught.value.code is QRErrorCode.MALFORMED


@pytest.mark.parametrize(
    ("site", "checkpoint"),
    [("site.7", "CP01"), ("site-7", ""), ("工地", "CP01"), ("site-7", "a" * 65)],
)
def test_signing_refuses_ids_that_would_break_the_format(site, checkpoint):
    with pytest.raises(ValueError):
        sign_checkpoint(SECRET, site, checkpoint)


def test_short_secret_is_refused():
    with pytest.raises(ValueError):
        sign_checkpoint(b"short", SITE, "CP01")

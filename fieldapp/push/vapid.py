"""The server's VAPID key pair (RFC 8292), kept in the instance folder.

``flask --app wsgi vapid-keys`` creates it once; running it again keeps the existing pair, since
every subscription on every phone is bound to the public key.
"""

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from webpush.vapid import VAPID

PRIVATE_FILE = "vapid_private.pem"
PUBLIC_FILE = "vapid_public.pem"


@dataclass(frozen=True)
class KeyPair:
    private_pem: bytes
    public_pem: bytes
    application_server_key: str  # base64url of the uncompressed P-256 point, for the page


def ensure_keys(instance_path: str | Path) -> tuple[KeyPair, bool]:
    """The key pair, created when missing. Returns (keys, created)."""
    folder = Path(instance_path)
    folder.mkdir(parents=True, exist_ok=True)
    private, public = folder / PRIVATE_FILE, folder / PUBLIC_FILE
    created = False
    if not private.exists():
        private_pem, public_pem, _key = VAPID.generate_keys()
        # O_EXCL: two processes racing here end up with one key pair, never a mixed one.
        try:
            fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(private_pem)
            public.write_bytes(public_pem)
            created = True
    keys = load_keys(instance_path)
    if keys is None:  # a private key without its public half: derive it
        public.write_bytes(_public_from_private(private.read_bytes()))
        keys = load_keys(instance_path)
    return keys, created


def load_keys(instance_path: str | Path) -> KeyPair | None:
    folder = Path(instance_path)
    private, public = folder / PRIVATE_FILE, folder / PUBLIC_FILE
    if not (private.exists() and public.exists()):
        return None
    private_pem, public_pem = private.read_bytes(), public.read_bytes()
    if not private_pem or not public_pem:
        return None
    public_key = serialization.load_pem_public_key(public_pem)
    return KeyPair(private_pem, public_pem, VAPID.get_application_server_key(public_key))


def _public_from_private(private_pem: bytes) -> bytes:
    key = serialization.load_pem_private_key(private_pem, password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

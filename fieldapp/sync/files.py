"""Photos and signatures: content-addressed, uploaded in pieces, checked by their bytes.

A file's identity is the SHA-256 the phone computed of the bytes it sent (the record refers to
it by that). Once those bytes have arrived and match it, the server decodes and re-encodes them
(``fieldapp.sync.images``: limits, orientation, only capture time and GPS kept from EXIF) and
stores the cleaned copy under that same name. So the stored bytes are the server's cleaned copy
of the content with that hash, not necessarily bytes with that hash; ``StoredFile.size`` stays
the size that was uploaded (the upload protocol's offsets), and serving reads the length, ETag
and type of what is stored.

Where the bytes are kept (a directory or an S3-compatible bucket, pieces included) is
``fieldapp.sync.storage``; this module keeps the count of what has arrived in the database.
"""

import hashlib
from pathlib import Path

from flask import current_app

from fieldapp.extensions import db
from fieldapp.models import User, utcnow
from fieldapp.sync import images, storage
from fieldapp.sync.models import StoredFile

MAX_FILE_BYTES = 10 * 1024 * 1024
CHUNK_LIMIT = 2 * 1024 * 1024

# What a file's first bytes must be for its declared type: the name or header is not trusted.
MAGIC = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/webp": (b"RIFF",),
}


class UploadError(Exception):
    def __init__(self, status: int, reason: str, offset: int | None = None):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.offset = offset


def storage_root() -> Path:
    """The directory of the local store (``FIELDAPP_FILES``), whichever store is in use."""
    return Path(current_app.config.get("FILE_STORAGE") or Path(current_app.instance_path, "files"))


def path_for(sha256: str, partial: bool = False) -> Path:
    """Where the local store keeps a file (its upload, with ``partial``)."""
    return storage.LocalStore(storage_root()).path(sha256, partial)


def get_for_org(sha256: str, org_id: int) -> StoredFile | None:
    stored = db.session.get(StoredFile, sha256)
    return stored if stored is not None and stored.org_id == org_id else None


def begin(user: User, sha256: str, size: int, content_type: str) -> StoredFile:
    """Announce a file; announcing it again (a resumed upload) changes nothing."""
    if content_type not in MAGIC:
        raise UploadError(415, "unsupported_type")
    if not 0 < size <= MAX_FILE_BYTES:
        raise UploadError(413, "too_large")
    stored = db.session.get(StoredFile, sha256)
    if stored is None:
        stored = StoredFile(
            sha256=sha256,
            org_id=user.org_id,
            uploaded_by_id=user.id,
            content_type=content_type,
            size=size,
            received=0,
        )
        db.session.add(stored)
        db.session.commit()
    elif stored.org_id != user.org_id:
        # The same photo in two organisations: each keeps its own copy of nothing; refuse.
        raise UploadError(409, "exists_elsewhere")
    return stored


def append(stored: StoredFile, offset: int, chunk: bytes) -> StoredFile:
    """Add the next piece at ``offset``; the last piece verifies hash and type."""
    # Pieces of one upload may reach several workers at once (a retry while the first attempt
    # is still running): one at a time per file. (SQLite takes no row locks; it has one writer.)
    db.session.refresh(stored, with_for_update=True)
    if stored.complete:
        return stored
    if offset != stored.received:
        raise UploadError(409, "offset_mismatch", stored.received)
    if len(chunk) > CHUNK_LIMIT or offset + len(chunk) > stored.size:
        raise UploadError(413, "too_large", stored.received)
    store = storage.store()
    try:
        store.write_piece(stored.sha256, offset, chunk)
        stored.received = offset + len(chunk)
        if stored.received == stored.size:
            _finish(store, stored)
    except storage.PiecesLost:
        # The store lost what the database counted (pieces expired by a lifecycle rule, a
        # volume restored without them): the phone sends it again from 0, and the piece at 0
        # replaces whatever is left.
        current_app.logger.warning("upload %s: pieces lost, starting over", stored.sha256)
        db.session.rollback()
        stored.received = 0
        db.session.commit()
        raise UploadError(409, "offset_mismatch", 0) from None
    except storage.Unavailable as error:
        db.session.rollback()
        current_app.logger.error("upload %s: file store unavailable: %s", stored.sha256, error)
        raise UploadError(503, "storage_unavailable", offset) from None
    db.session.commit()
    return stored


# Why an image that matched its hash is refused (``images.ImageRefused.reason``): HTTP status.
REFUSED_STATUS = {"too_many_pixels": 413, "damaged_image": 415}


def _finish(store, stored: StoredFile) -> None:
    data = store.read_partial(stored.sha256)
    if hashlib.sha256(data).hexdigest() != stored.sha256:
        _start_over(store, stored)
        raise UploadError(422, "hash_mismatch", 0)
    if not data.startswith(MAGIC[stored.content_type]) or (
        stored.content_type == "image/webp" and data[8:12] != b"WEBP"
    ):
        _start_over(store, stored)
        raise UploadError(415, "not_an_image", 0)
    try:
        cleaned = images.clean(data, stored.content_type)
    except images.ImageRefused as refused:
        current_app.logger.info("upload %s refused: %s", stored.sha256, refused)
        _start_over(store, stored)
        raise UploadError(REFUSED_STATUS[refused.reason], refused.reason, 0) from None
    # Bare already (``not cleaned.reencoded``): ``cleaned.data`` is the upload, byte for byte.
    store.publish(stored.sha256, cleaned.data, stored.content_type)
    store.discard_partial(stored.sha256)
    stored.complete = True
    stored.completed_at = utcnow()


def _start_over(store, stored: StoredFile) -> None:
    store.discard_partial(stored.sha256)
    stored.received = 0
    db.session.commit()

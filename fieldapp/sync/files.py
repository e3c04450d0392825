"""Photos and signatures: content-addressed, uploaded in pieces, checked by their bytes.

A file's identity is the SHA-256 the phone computed of the bytes it sent (the record refers to
it by that). Once those bytes have arrived and match it, the server decodes and re-encodes them
(``fieldapp.sync.images``: limits, orientation, only capture time and GPS kept from EXIF) and
stores the cleaned copy under that same name. So the stored bytes are the server's cleaned copy
of the content with that hash, not necessarily bytes with that hash; ``StoredFile.size`` stays
the size that was uploaded (the upload protocol's offsets), and serving reads the length, ETag
and type of what is on disk.
"""

import hashlib
import os
import tempfile
from pathlib import Path

from flask import current_app

from fieldapp.extensions import db
from fieldapp.models import User, utcnow
from fieldapp.sync import images
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
    return Path(current_app.config.get("FILE_STORAGE") or Path(current_app.instance_path, "files"))


def path_for(sha256: str, partial: bool = False) -> Path:
    # The name is the validated hex digest, never anything the client chose.
    name = sha256 + (".part" if partial else "")
    return storage_root() / sha256[:2] / name


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
    if stored.complete:
        return stored
    if offset != stored.received:
        raise UploadError(409, "offset_mismatch", stored.received)
    if len(chunk) > CHUNK_LIMIT or offset + len(chunk) > stored.size:
        raise UploadError(413, "too_large", stored.received)
    partial = path_for(stored.sha256, partial=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    with partial.open("r+b" if partial.exists() else "wb") as handle:
        handle.truncate(offset)  # a piece written before a crash but never counted goes
        handle.seek(offset)
        handle.write(chunk)
    stored.received = offset + len(chunk)
    if stored.received == stored.size:
        _finish(stored, partial)
    db.session.commit()
    return stored


# Why an image that matched its hash is refused (``images.ImageRefused.reason``): HTTP status.
REFUSED_STATUS = {"too_many_pixels": 413, "damaged_image": 415}


def _finish(stored: StoredFile, partial: Path) -> None:
    data = partial.read_bytes()
    if hashlib.sha256(data).hexdigest() != stored.sha256:
        _start_over(stored, partial)
        raise UploadError(422, "hash_mismatch", 0)
    if not data.startswith(MAGIC[stored.content_type]) or (
        stored.content_type == "image/webp" and data[8:12] != b"WEBP"
    ):
        _start_over(stored, partial)
        raise UploadError(415, "not_an_image", 0)
    try:
        cleaned = images.clean(data, stored.content_type)
    except images.ImageRefused as refused:
        current_app.logger.info("upload %s refused: %s", stored.sha256, refused)
        _start_over(stored, partial)
        raise UploadError(REFUSED_STATUS[refused.reason], refused.reason, 0) from None
    final = path_for(stored.sha256)
    if not cleaned.reencoded:  # bare already: the uploaded bytes are stored as they are
        partial.replace(final)
    else:
        _write_atomically(final, cleaned.data)
        partial.unlink()
    stored.complete = True
    stored.completed_at = utcnow()


def _start_over(stored: StoredFile, partial: Path) -> None:
    partial.unlink()
    stored.received = 0
    db.session.commit()


def _write_atomically(path: Path, data: bytes) -> None:
    """Readers see the old file or the whole new one, never a half-written one."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise

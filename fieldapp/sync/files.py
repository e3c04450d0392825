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
from dataclasses import dataclass
from pathlib import Path

from flask import current_app
from sqlalchemy.exc import IntegrityError

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


@dataclass(frozen=True)
class UploadState:
    """What the upload answer reports, taken before the commit (which expires the row)."""

    sha256: str
    size: int
    received: int
    complete: bool


def _state(stored: StoredFile) -> UploadState:
    return UploadState(stored.sha256, stored.size, stored.received, stored.complete)


def begin(user: User, sha256: str, size: int, content_type: str) -> UploadState:
    """Announce a file; announcing it again (a resumed upload) changes nothing."""
    stored = _announce(user, sha256, size, content_type)
    state = _state(stored)
    if stored in db.session.new:
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()  # announced by another phone meanwhile: answer from theirs
            return begin(user, sha256, size, content_type)
    return state


def begin_with_piece(
    user: User, sha256: str, size: int, content_type: str, offset: int, chunk: bytes
) -> UploadState:
    """Creation with upload: announce and append in one request, answering what announcing and
    then appending would (a file already known resumes, or is complete, as after ``begin``)."""
    stored = _announce(user, sha256, size, content_type)
    if stored not in db.session.new:
        return append(stored, offset, chunk)
    # One transaction for both: the row is inserted at the commit, as the piece left it (for a
    # whole file, one INSERT). A piece that is not the whole file is written to the store: the
    # row is inserted first then, so a concurrent first upload of the file waits for this one
    # instead of writing pieces too.
    try:
        if offset or len(chunk) != size:
            db.session.flush()
        return _append_locked(stored, offset, chunk)
    except IntegrityError:
        # Another phone of the organisation sent the same new file at the same moment and its
        # row came first: go on from what that upload holds, as if this one had come later.
        db.session.rollback()
        return begin_with_piece(user, sha256, size, content_type, offset, chunk)


def _announce(user: User, sha256: str, size: int, content_type: str) -> StoredFile:
    """The file's row, new (added, not committed) or known to the user's organisation."""
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
            complete=False,
        )
        db.session.add(stored)
    elif stored.org_id != user.org_id:
        # The same photo in two organisations: each keeps its own copy of nothing; refuse.
        raise UploadError(409, "exists_elsewhere")
    return stored


def append(stored: StoredFile, offset: int, chunk: bytes) -> UploadState:
    """Add the next piece at ``offset``; the last piece verifies hash and type."""
    # Pieces of one upload may reach several workers at once (a retry while the first attempt
    # is still running): one at a time per file. (SQLite takes no row locks; it has one writer.)
    db.session.refresh(stored, with_for_update=True)
    return _append_locked(stored, offset, chunk)


def _append_locked(stored: StoredFile, offset: int, chunk: bytes) -> UploadState:
    if stored.complete:
        return _state(stored)
    if offset != stored.received:
        raise UploadError(409, "offset_mismatch", stored.received)
    if len(chunk) > CHUNK_LIMIT or offset + len(chunk) > stored.size:
        raise UploadError(413, "too_large", stored.received)
    store = storage.store()
    try:
        if offset == 0 and len(chunk) == stored.size:
            # The whole file at once (a signature, a small photo): checked as it came, with no
            # piece written to the store and read back.
            stored.received = len(chunk)
            _finish(store, stored, chunk)
        else:
            store.write_piece(stored.sha256, offset, chunk)
            stored.received = offset + len(chunk)
            if stored.received == stored.size:
                _finish(store, stored, store.read_partial(stored.sha256))
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
    state = _state(stored)
    db.session.commit()
    return state


# Why an image that matched its hash is refused (``images.ImageRefused.reason``): HTTP status.
REFUSED_STATUS = {"too_many_pixels": 413, "damaged_image": 415}


def _finish(store, stored: StoredFile, data: bytes) -> None:
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

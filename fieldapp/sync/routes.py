"""The sync API the phone talks to, and the pages around it (outbox, conflicts)."""

import re
from datetime import UTC, datetime

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user, login_required
from pydantic import ValidationError

from fieldapp.access import roles_required
from fieldapp.errors import abort_with, error_response
from fieldapp.extensions import db
from fieldapp.models import Role
from fieldapp.sync import changes, engine, files, held, registry, storage
from fieldapp.sync.conflicts import open_conflicts, resolve
from fieldapp.sync.messages import field_errors
from fieldapp.sync.openapi import openapi_document

bp = Blueprint("sync", __name__)
SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _json_body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort_with(400, _("The request body must be a JSON object."), "malformed_json")
    return body


def _device_or_abort(device_id: str):
    device = engine.lock_device(current_user, device_id)
    if device is None:
        abort_with(
            403,
            _(
                "This phone is not registered for your account. Log in "
                "again; your unsent records stay on the phone."
            ),
            "unknown_device",
        )
    if device.is_revoked:
        db.session.rollback()
        abort_with(
            403,
            _("This phone was revoked by an administrator. Your unsent records stay on the phone."),
            "device_revoked",
        )
    return device


@bp.post("/api/sync/push")
@login_required
def push():
    """Apply a batch of mutations from one phone; answered only after they are committed."""
    try:
        batch = engine.PushIn.model_validate(_json_body())
    except ValidationError as error:
        return jsonify(
            error="invalid_batch",
            message=_("The batch is not valid."),
            fields=field_errors(error.errors()),
        ), 400
    if g.get("revoked_device_id"):
        return _hold(batch)
    device = _device_or_abort(batch.device_id)
    user = current_user._get_current_object()  # not the proxy: it is read per mutation
    results = engine.push(user, device, batch.mutations)
    db.session.commit()
    return jsonify(results=[r.as_json() for r in results], device_seq=device.last_seq)


def _hold(batch):
    """A revoked phone's batch: kept for the office (fieldapp.sync.held), nothing applied."""
    count = None
    if batch.device_id == g.revoked_device_id:  # only the session's own phone hands over
        count = held.hold(current_user, batch.device_id, batch.mutations)
        db.session.commit()
    if count is None:
        return error_response(
            403,
            _("This phone was revoked by an administrator. Your unsent records stay on the phone."),
            "device_revoked",
        )
    message = ngettext(
        "This phone was revoked by an administrator. Its %(num)d unsent record was handed to "
        "your office for review; records stay on the phone.",
        "This phone was revoked by an administrator. Its %(num)d unsent records were handed to "
        "your office for review; they stay on the phone.",
        count,
    )
    return jsonify(error="device_revoked", message=message, held=True, count=count), 403


PULL_PARAMETERS = {"cursor", "device_id", "pending", "oldest_pending"}


@bp.get("/api/sync/pull")
@login_required
def pull():
    """What changed for this user after ``cursor``; also records what the phone still holds."""
    unknown = set(request.args) - PULL_PARAMETERS
    if unknown:
        return error_response(
            400, _("Unknown parameter: %(name)s.", name=", ".join(sorted(unknown))), "invalid"
        )
    # Present but empty is not a number: only oldest_pending may be empty (nothing waiting).
    cursor = _whole_number(request.args.get("cursor", "0"))
    pending = request.args.get("pending")
    oldest = request.args.get("oldest_pending") or None
    if cursor is None:
        return error_response(400, _("The sync position is not a number."), "bad_cursor")
    if pending is not None and _whole_number(pending) is None:
        return error_response(400, _("The count of waiting records is not a number."), "invalid")
    if oldest is not None and _parse_time(oldest) is None:
        return error_response(
            400, _("The time of the oldest waiting record is not a time."), "invalid"
        )
    device_id = request.args.get("device_id", "")
    device_seq = None
    if device_id:
        device = _device_or_abort(device_id)
        engine.record_heartbeat(device, pending and int(pending), _parse_time(oldest))
        device_seq = device.last_seq
        db.session.commit()
    rows, new_cursor, more = changes.pull(current_user, cursor)
    return jsonify(changes=rows, cursor=new_cursor, more=more, device_seq=device_seq)


def _whole_number(value: str) -> int | None:
    """A query value that must be a whole number a database column can hold, else None."""
    if not value.isdigit() or len(value) > 18:
        return None
    return int(value)


# RFC 3339, as the phone's Date.toISOString() writes it; fromisoformat alone would also take a
# bare date or a space for the "T", which the API document does not allow.
RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})", re.ASCII
)


def _parse_time(value: str | None):
    if not value or not RFC3339.fullmatch(value):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@bp.get("/api/sync/daypack")
@login_required
def daypack():
    """Everything today's work needs offline, and the pages the phone should keep."""
    return jsonify(changes.daypack(current_user))


# ----- files ----------------------------------------------------------------------------


def _checked_sha(sha256: str) -> str:
    if not SHA256.match(sha256):
        abort_with(400, _("Not a valid file reference."), "bad_sha256")
    return sha256


def _upload_state(stored):
    """``stored``: a ``files.UploadState`` or a loaded ``StoredFile``; both read without a query."""
    response = jsonify(
        sha256=stored.sha256, size=stored.size, offset=stored.received, complete=stored.complete
    )
    response.headers["Upload-Offset"] = str(stored.received)
    return response


def _upload_error(error: files.UploadError):
    messages = {
        "unsupported_type": _("Only JPEG, PNG and WebP images can be uploaded."),
        "too_large": _("The upload is too large."),
        "offset_mismatch": _("The upload continues from another point."),
        "hash_mismatch": _("The file arrived damaged; it is sent again."),
        "not_an_image": _("This file is not an image of the type it claims."),
        "exists_elsewhere": _("This file cannot be stored."),
        "too_many_pixels": _("The image has too many pixels."),
        "damaged_image": _("The image is damaged and cannot be read."),
        "storage_unavailable": _("Files cannot be stored just now; sending is tried again later."),
    }
    response = jsonify(
        error=error.reason, message=messages.get(error.reason, error.reason), offset=error.offset
    )
    if error.offset is not None:
        response.headers["Upload-Offset"] = str(error.offset)
    return response, error.status


@bp.post("/api/sync/files/<sha256>")
@login_required
def begin_upload(sha256: str):
    """Announce a file by its SHA-256, size and type; answers how much has arrived."""
    body = _json_body()
    size, content_type = body.get("size"), body.get("content_type")
    # JSON true/false are ints to Python: a size must be a real, positive number of bytes.
    if type(size) is not int or size <= 0 or not isinstance(content_type, str):
        return error_response(400, _("Give the file's size and type."), "invalid")
    try:
        state = files.begin(current_user, _checked_sha(sha256), size, content_type)
    except files.UploadError as error:
        return _upload_error(error)
    return _upload_state(state)


@bp.route("/api/sync/files/<sha256>", methods=["HEAD", "GET"])
@login_required
def file_state_or_content(sha256: str):
    """HEAD: how much of the file has arrived. GET: the file, once complete."""
    stored = files.get_for_org(_checked_sha(sha256), current_user.org_id)
    if stored is None:
        abort(404)
    if request.method == "HEAD" or not stored.complete:
        return _upload_state(stored)
    # Streamed through the app from either store (a bucket's objects stay private), with the
    # stored bytes' own length, ETag and Last-Modified; If-None-Match answers 304, a Range 206.
    try:
        response = storage.store().serve(stored.sha256, stored.content_type, max_age=31536000)
    except storage.Unavailable as error:
        current_app.logger.error("file %s: file store unavailable: %s", stored.sha256, error)
        return error_response(503, _("The file cannot be read just now."), "storage_unavailable")
    except storage.RangeNotSatisfiable as error:
        refused, status = error_response(
            416, _("The requested range is outside the file."), "range_not_satisfiable"
        )
        refused.headers["Content-Range"] = f"bytes */{error.size}"
        return refused, status
    response.headers["Cache-Control"] = "private, max-age=31536000, immutable"
    return response


@bp.patch("/api/sync/files/<sha256>")
@login_required
def append_upload(sha256: str):
    """Send the next piece of a file from ``Upload-Offset``; with ``Upload-Length`` (and the
    file's type as ``Content-Type``) it also announces the file, as the POST would."""
    sha256 = _checked_sha(sha256)
    if "Upload-Length" in request.headers:
        return _begin_with_piece(sha256)
    stored = files.get_for_org(sha256, current_user.org_id)
    if stored is None:
        abort(404)
    offset = request.headers.get("Upload-Offset", type=int)
    if offset is None:
        return error_response(400, _("Give the Upload-Offset header."), "invalid")
    try:
        state = files.append(stored, offset, request.get_data(cache=False))
    except files.UploadError as error:
        return _upload_error(error)
    return _upload_state(state)


def _begin_with_piece(sha256: str):
    """Creation with upload: one request where a small file would otherwise take two."""
    size = _whole_number(request.headers["Upload-Length"])
    offset = request.headers.get("Upload-Offset", type=int)
    if not size:
        return error_response(400, _("Give the file's size and type."), "invalid")
    if offset is None:
        return error_response(400, _("Give the Upload-Offset header."), "invalid")
    try:
        state = files.begin_with_piece(
            current_user, sha256, size, request.mimetype, offset, request.get_data(cache=False)
        )
    except files.UploadError as error:
        return _upload_error(error)
    return _upload_state(state)


# ----- documentation and pages ----------------------------------------------------------


@bp.get("/api/openapi.json")
def openapi():
    """The OpenAPI document of the sync and upload endpoints."""
    return jsonify(openapi_document())


@bp.get("/sync/outbox")
@login_required
def outbox():
    """What this phone holds and has not yet had confirmed (drawn from IndexedDB)."""
    return render_template("sync/outbox.html", record_types=registry.describe_for_phone())


@bp.get("/sync/conflicts")
@roles_required(Role.SUPERVISOR, Role.ADMIN)
def conflicts():
    """Changes the ownership rules could not settle, with both sides, for a decision."""
    return render_template("sync/conflicts.html", conflicts=open_conflicts(current_user))


@bp.post("/sync/conflicts/<int:conflict_id>")
@roles_required(Role.SUPERVISOR, Role.ADMIN)
def resolve_conflict(conflict_id: int):
    """Keep the office's values or take the phone's."""
    choice = request.form.get("keep")
    if choice not in ("server", "phone"):
        abort(400)
    resolve(current_user, conflict_id, choice)
    flash(_("Conflict resolved."), "success")
    return redirect(url_for("sync.conflicts"))

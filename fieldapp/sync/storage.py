"""Where photos and signatures are kept: a directory (a volume) or an S3-compatible bucket.

Both hold, per file, the pieces of an upload while it arrives and then the finished file, named
by the file's SHA-256 (a validated hex digest, never anything the client chose). Nothing about an
upload lives only on one worker: with a bucket, each piece is an object of its own, so the
pieces of one upload may arrive at different workers on different machines.

A piece stands for "the bytes from this offset on", as a write into a file does: joining the
pieces in order of offset, each one cuts off whatever an earlier one had past its own offset. So
a piece written before a crash but never counted (the database still says fewer bytes) is simply
replaced by the resend at that offset, as the local file is truncated there.

Layout (``PREFIX`` is ``FIELDAPP_S3_PREFIX``, empty by default)::

    PREFIX ab/abcdef…                      the finished file (the server's cleaned copy)
    PREFIX partial/abcdef…/0000262144      a piece of an upload still arriving, by offset

so a bucket lifecycle rule on ``PREFIX partial/`` can expire abandoned uploads.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

from flask import Response, abort, current_app, request, send_file
from werkzeug.exceptions import RequestedRangeNotSatisfiable
from werkzeug.http import parse_range_header

# A piece smaller than this is joined to the one before it rather than kept as an object of its
# own, so a client sending tiny pieces cannot make a 10 MiB upload into millions of objects.
# The phone's pieces (256 KiB) are never joined.
MIN_PIECE = 64 * 1024
STREAM_CHUNK = 64 * 1024


class PiecesLost(Exception):
    """The store does not have the bytes before an offset the database counts as received
    (pieces expired by a lifecycle rule, a volume restored without its ``.part`` files)."""


class Unavailable(Exception):
    """The store could not be reached or answered with an error; try again later."""


class RangeNotSatisfiable(Exception):
    """The request's byte ``Range`` lies outside the file or is malformed: answer 416 with
    ``Content-Range: bytes */size``."""

    def __init__(self, size: int):
        super().__init__(size)
        self.size = size


class LocalStore:
    """A directory: ``ab/abcdef…`` for finished files, ``ab/abcdef….part`` while uploading."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, sha256: str, partial: bool = False) -> Path:
        return self.root / sha256[:2] / (sha256 + (".part" if partial else ""))

    def write_piece(self, sha256: str, offset: int, chunk: bytes) -> None:
        partial = self.path(sha256, partial=True)
        partial.parent.mkdir(parents=True, exist_ok=True)
        try:
            handle = partial.open("r+b")
        except FileNotFoundError:
            if offset:
                raise PiecesLost(sha256) from None
            handle = partial.open("wb")
        with handle:
            if handle.seek(0, os.SEEK_END) < offset:
                raise PiecesLost(sha256)
            handle.truncate(offset)  # a piece written before a crash but never counted goes
            handle.seek(offset)
            handle.write(chunk)

    def read_partial(self, sha256: str) -> bytes:
        try:
            return self.path(sha256, partial=True).read_bytes()
        except FileNotFoundError:
            raise PiecesLost(sha256) from None

    def discard_partial(self, sha256: str) -> None:
        self.path(sha256, partial=True).unlink(missing_ok=True)

    def publish(self, sha256: str, data: bytes, content_type: str) -> None:
        """Readers see no file or the whole one, never a half-written one."""
        path = self.path(sha256)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def serve(self, sha256: str, content_type: str, max_age: int) -> Response:
        response = send_file(
            self.path(sha256), mimetype=content_type, max_age=max_age, conditional=False
        )
        _answer_conditions(response, response.content_length)
        return response


class S3Store:
    """An S3-compatible bucket (AWS S3, MinIO, SeaweedFS, Ceph, OSS, COS …) through boto3."""

    def __init__(self, client, bucket: str, prefix: str = ""):
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    def key(self, sha256: str) -> str:
        return f"{self.prefix}{sha256[:2]}/{sha256}"

    def piece_prefix(self, sha256: str) -> str:
        return f"{self.prefix}partial/{sha256}/"

    def piece_key(self, sha256: str, offset: int) -> str:
        return f"{self.piece_prefix(sha256)}{offset:010d}"  # sorts by name as by number

    def pieces(self, sha256: str) -> list[tuple[int, int, str]]:
        """``(offset, size, key)`` of the pieces in the store, by offset."""
        prefix = self.piece_prefix(sha256)
        found = []
        with _translated():
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                for item in page.get("Contents", ()):
                    name = item["Key"][len(prefix) :]
                    if name.isdigit():
                        found.append((int(name), item["Size"], item["Key"]))
        return sorted(found)

    def write_piece(self, sha256: str, offset: int, chunk: bytes) -> None:
        pieces = self.pieces(sha256)
        before = [p for p in pieces if p[0] < offset]
        end = 0  # how many bytes the pieces before ``offset`` make, joined
        for start, size, _ in before:
            if start > end:
                raise PiecesLost(sha256)
            end = start + size
        if end < offset:
            raise PiecesLost(sha256)
        key, body = self.piece_key(sha256, offset), chunk
        if before and offset - before[-1][0] < MIN_PIECE:
            # Join a small piece to the one before (only the bytes counted up to ``offset``).
            key = before[-1][2]
            body = self._get(key)[: offset - before[-1][0]] + chunk
        # Pieces from ``offset`` on were never counted (a crash, a retry): the file is cut there.
        self._delete([k for start, _, k in pieces if start >= offset and k != key])
        with _translated():
            self.client.put_object(Bucket=self.bucket, Key=key, Body=body)

    def read_partial(self, sha256: str) -> bytes:
        data = bytearray()
        for start, _, key in self.pieces(sha256):
            if start > len(data):
                raise PiecesLost(sha256)
            del data[start:]
            data += self._get(key)
        if not data:
            raise PiecesLost(sha256)
        return bytes(data)

    def discard_partial(self, sha256: str) -> None:
        self._delete([key for _, _, key in self.pieces(sha256)])

    def publish(self, sha256: str, data: bytes, content_type: str) -> None:
        # One PUT: the object appears whole or not at all.
        with _translated():
            self.client.put_object(
                Bucket=self.bucket, Key=self.key(sha256), Body=data, ContentType=content_type
            )

    def serve(self, sha256: str, content_type: str, max_age: int) -> Response:
        """Stream the object through the app (the organisation check stays here), with the
        store's ETag and Last-Modified, answering conditions and a ``Range`` as the volume does.
        Only the bytes sent are asked of the bucket (GetObject's own ``Range``)."""
        key = self.key(sha256)
        # Without a Range one GET does (a 304 closes its body unread). With one, the object's
        # size and ETag first decide which bytes to send (If-Range, 416), then one GET asks for
        # just those: a video player's seek must not pull the whole file out of the bucket.
        ranged = "Range" in request.headers
        found = self._find(key, head=ranged)
        response = Response(mimetype=content_type, direct_passthrough=True)
        response.content_length = found["ContentLength"]
        etag = found.get("ETag", "").strip('"')
        if etag:
            response.set_etag(etag)
        if found.get("LastModified"):
            response.last_modified = found["LastModified"]
        response.cache_control.max_age = max_age
        _answer_conditions(response, found["ContentLength"])
        if ranged and response.status_code == 206:
            sent = response.content_range
            found = self._find(key, byte_range=f"bytes={sent.start}-{sent.stop - 1}")
            if found["ContentLength"] != sent.stop - sent.start:
                found["Body"].close()  # a store that ignored the Range: never send wrong bytes
                raise Unavailable(f"{key}: asked for {sent}, got {found['ContentLength']} bytes")
        elif ranged and response.status_code == 200:
            found = self._find(key)  # If-Range no longer matches, or several ranges
        if "Body" in found:
            body = found["Body"]
            response.response = body.iter_chunks(STREAM_CHUNK)
            response.call_on_close(body.close)
        return response

    def _find(self, key: str, head: bool = False, byte_range: str | None = None) -> dict:
        """The object's size, ETag, Last-Modified and (unless ``head``) its body, or only the
        bytes of ``byte_range``; 404 when it is missing."""
        from botocore.exceptions import ClientError

        try:
            with _translated(missing_ok=True):
                if head:
                    return self.client.head_object(Bucket=self.bucket, Key=key)
                extra = {"Range": byte_range} if byte_range else {}
                return self.client.get_object(Bucket=self.bucket, Key=key, **extra)
        except ClientError:
            abort(404)  # as for a file missing from the volume

    def _get(self, key: str) -> bytes:
        with _translated():
            found = self.client.get_object(Bucket=self.bucket, Key=key)
            with found["Body"] as body:
                return body.read()

    def _delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            with _translated():
                answer = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                )
            if answer.get("Errors"):
                raise Unavailable(f"could not delete {answer['Errors'][0]}")


def _answer_conditions(response: Response, size: int) -> None:
    """Werkzeug's answer to If-None-Match/If-Modified-Since (304), If-Match (412), Range and
    If-Range (206, 416), the same for both stores. A request for several ranges gets the whole
    file (200), as RFC 9110 allows, rather than a multipart/byteranges answer; so does a range
    in a unit other than bytes, which RFC 9110 says to ignore."""
    environ = request.environ
    wanted = parse_range_header(request.headers.get("Range"))
    if wanted is not None and (wanted.units != "bytes" or len(wanted.ranges) > 1):
        environ = {name: value for name, value in environ.items() if name != "HTTP_RANGE"}
    try:
        response.make_conditional(environ, accept_ranges=True, complete_length=size)
    except RequestedRangeNotSatisfiable:
        response.close()  # the volume's open file
        raise RangeNotSatisfiable(size) from None


class _translated:
    """botocore's errors as ``Unavailable`` (or left as they are for a missing object)."""

    def __init__(self, missing_ok: bool = False):
        self.missing_ok = missing_ok

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if error is None:
            return False
        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(error, ClientError):
            code = str(error.response.get("Error", {}).get("Code", ""))
            if self.missing_ok and code in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise Unavailable(str(error)) from error
        if isinstance(error, BotoCoreError):
            raise Unavailable(str(error)) from error
        return False


_lock = threading.Lock()
_boto_session = None  # one per process: it caches the parsed S3 API (0.5 s to build)


def store() -> LocalStore | S3Store:
    """The app's store, chosen by configuration: a bucket when ``FILE_S3_BUCKET`` is set."""
    app = current_app._get_current_object()
    cached = app.extensions.get("fieldapp.files")
    if cached is None:
        with _lock:
            cached = app.extensions.get("fieldapp.files")
            if cached is None:
                cached = app.extensions["fieldapp.files"] = _build(app.config, app.instance_path)
    return cached


def _s3_client(**options):
    """A client made under the lock: creating clients on one session from several threads at
    once is not safe; the client itself is."""
    global _boto_session
    import boto3

    if _boto_session is None:
        _boto_session = boto3.session.Session()
    return _boto_session.client("s3", **options)


def _build(config, instance_path: str) -> LocalStore | S3Store:
    bucket = config.get("FILE_S3_BUCKET")
    if not bucket:
        return LocalStore(Path(config.get("FILE_STORAGE") or Path(instance_path, "files")))
    from botocore.config import Config

    endpoint = config.get("FILE_S3_ENDPOINT") or None
    addressing = config.get("FILE_S3_ADDRESSING") or ("path" if endpoint else "auto")
    settings = Config(
        s3={"addressing_style": addressing},
        connect_timeout=5,
        read_timeout=30,
        retries={"max_attempts": 3, "mode": "standard"},
        # Only the checksums S3 requires: several S3-compatible stores refuse the newer ones.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    # Credentials: boto3's usual chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile,
    # an instance role), looked up when the client is made.
    client = _s3_client(
        endpoint_url=endpoint,
        region_name=config.get("FILE_S3_REGION") or None,
        config=settings,
    )
    prefix = (config.get("FILE_S3_PREFIX") or "").strip("/")
    return S3Store(client, bucket, prefix + "/" if prefix else "")

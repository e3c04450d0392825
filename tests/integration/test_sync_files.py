"""Photos and signatures: resumable, content-addressed uploads checked by their bytes."""

import hashlib
import io

import pytest
from PIL import Image
from sqlalchemy import event, insert, select

from fieldapp.extensions import db
from fieldapp.models import User
from fieldapp.sync import files
from fieldapp.sync.models import StoredFile
from tests.integration.test_sync_engine import PHONE, Phone, note
from tests.unit.test_images import (
    SECRETS,
    assert_only_capture_time_and_gps,
    assert_upright,
    camera_jpeg,
    png_claiming,
    scene,
    signature_png,
)


def jpeg(size=(800, 600), colour=(200, 30, 30)) -> bytes:
    """A photo shrunk on a canvas, JPEG at quality 0.82, with no metadata at all. (Chrome's
    canvas adds an sRGB profile, so our phones' photos are re-encoded once; see
    tests/unit/test_images.py. The browser test sends real ones.)"""
    buffer = io.BytesIO()
    scene(*size, seed=sum(colour)).save(buffer, "JPEG", quality=82)
    return buffer.getvalue()


class Uploader:
    def __init__(self, client):
        self.client = client

    def begin(self, data: bytes, content_type="image/jpeg", sha=None):
        sha = sha or hashlib.sha256(data).hexdigest()
        return sha, self.client.raw.post(
            f"/api/sync/files/{sha}",
            json={"size": len(data), "content_type": content_type},
            headers={"X-CSRFToken": self.client.token, "Accept-Language": "en"},
        )

    def send(self, sha, offset, piece):
        return self.client.raw.patch(
            f"/api/sync/files/{sha}",
            data=piece,
            headers={
                "X-CSRFToken": self.client.token,
                "Upload-Offset": str(offset),
                "Accept-Language": "en",
            },
        )

    def create(self, sha, data, content_type="image/jpeg", length=None, offset=0):
        """Creation with upload: announce and send ``data`` in one PATCH."""
        return self.client.raw.patch(
            f"/api/sync/files/{sha}",
            data=data,
            headers={
                "X-CSRFToken": self.client.token,
                "Upload-Offset": str(offset),
                "Upload-Length": str(len(data) if length is None else length),
                "Content-Type": content_type,
                "Accept-Language": "en",
            },
        )


@pytest.fixture
def courier(login):
    return login("courier1", device_id=PHONE)


def test_an_interrupted_upload_resumes_where_it_stopped(courier):
    data = jpeg()
    up = Uploader(courier)
    sha, started = up.begin(data)
    assert started.json == {"sha256": sha, "size": len(data), "offset": 0, "complete": False}
    half = len(data) // 2
    assert up.send(sha, 0, data[:half]).json["offset"] == half
    # The phone lost the answer and retries from 0: told where to go on instead.
    stale = up.send(sha, 0, data[:half])
    assert stale.status_code == 409 and stale.headers["Upload-Offset"] == str(half)
    # After a restart the phone asks how far it got, then finishes.
    head = courier.raw.head(f"/api/sync/files/{sha}")
    assert head.headers["Upload-Offset"] == str(half)
    done = up.send(sha, half, data[half:])
    assert done.json["complete"] is True
    # A JPEG with nothing to drop that would not shrink is stored byte for byte.
    assert courier.raw.get(f"/api/sync/files/{sha}").data == data
    # Announcing it again (a second record with the same photo) changes nothing.
    assert up.begin(data)[1].json["complete"] is True


def test_a_record_shows_its_photo_pending_until_the_file_lands(courier):
    data = jpeg(colour=(10, 120, 10))
    sha = hashlib.sha256(data).hexdigest()
    phone = Phone(courier, PHONE)
    result = phone.push([note(1, photo=sha)]).json["results"][0]
    assert result["status"] == "applied", result
    assert result["files_missing"] == [sha]
    up = Uploader(courier)
    up.begin(data)
    up.send(sha, 0, data)
    again = phone.push([note(2, photo=sha)]).json["results"][0]
    assert "files_missing" not in again


def test_damaged_bytes_are_refused_and_the_upload_starts_over(courier):
    data = jpeg()
    up = Uploader(courier)
    sha, _ = up.begin(data)
    damaged = data[:-10] + b"0123456789"
    response = up.send(sha, 0, damaged)
    assert response.status_code == 422 and response.json["error"] == "hash_mismatch"
    assert db.session.get(StoredFile, sha).received == 0
    assert up.send(sha, 0, data).json["complete"] is True


def test_a_file_is_judged_by_its_content_not_its_declared_type(courier):
    text = b"<?php system($_GET['x']); ?> not a photo at all"
    up = Uploader(courier)
    sha, _ = up.begin(text, content_type="image/jpeg")
    response = up.send(sha, 0, text)
    assert response.status_code == 415 and response.json["error"] == "not_an_image"
    assert not db.session.get(StoredFile, sha).complete
    _, refused = up.begin(text, content_type="application/x-php")
    assert refused.status_code == 415


def test_size_limits_and_bad_references(courier):
    up = Uploader(courier)
    sha = "a" * 64
    up.begin(b"x" * 10, sha=sha)
    too_big = courier.raw.post(
        f"/api/sync/files/{'b' * 64}",
        json={"size": 50 * 1024 * 1024, "content_type": "image/jpeg"},
        headers={"X-CSRFToken": courier.token},
    )
    assert too_big.status_code == 413
    overflow = up.send(sha, 0, b"x" * 11)
    assert overflow.status_code == 413
    assert courier.raw.head("/api/sync/files/..%2F..%2Fsecret_key").status_code in (400, 404)
    assert courier.raw.get("/api/sync/files/not-a-hash").status_code == 400


def add_stranger(username="stranger", role=None):
    """A user of another organisation."""
    from fieldapp.models import Organisation, Role, User

    other_org = Organisation(code="OTHER", name="别的公司")
    db.session.add(other_org)
    db.session.flush()
    stranger = User(
        org_id=other_org.id, username=username, display_name="外人", role=role or Role.SUPERVISOR
    )
    stranger.set_password("demo-2026")
    db.session.add(stranger)
    db.session.commit()


def test_another_organisations_user_cannot_read_a_file(courier, login):
    data = jpeg(colour=(1, 2, 3))
    up = Uploader(courier)
    sha, _ = up.begin(data)
    up.send(sha, 0, data)
    add_stranger()
    assert login("stranger").raw.get(f"/api/sync/files/{sha}").status_code == 404
    assert login("supervisor").raw.get(f"/api/sync/files/{sha}").status_code == 200


def test_a_signature_reference_must_be_a_sha256(courier):
    phone = Phone(courier, PHONE)
    result = phone.push([note(1, signature="../../etc/passwd")]).json["results"][0]
    assert result["status"] == "rejected" and "signature" in result["fields"]


# ----- what is stored is a cleaned copy ------------------------------------------------------


def upload(courier, data: bytes, content_type: str):
    up = Uploader(courier)
    sha, started = up.begin(data, content_type=content_type)
    assert started.status_code == 200, started.json
    return sha, up.send(sha, 0, data)


def test_a_camera_photo_is_stored_without_what_the_record_does_not_need(courier):
    """A third-party client's camera JPEG: owner, model, serial number, maker note, a thumbnail
    of another picture, XMP, a comment, a profile; turned sideways by its EXIF orientation."""
    sent = camera_jpeg()
    for secret in SECRETS:
        assert secret in sent
    sha, done = upload(courier, sent, "image/jpeg")
    assert done.status_code == 200 and done.json["complete"] is True
    # The record refers to it by the hash of what was sent; the upload's size is what was sent.
    phone = Phone(courier, PHONE)
    assert "files_missing" not in phone.push([note(1, photo=sha)]).json["results"][0]
    assert courier.raw.head(f"/api/sync/files/{sha}").headers["Upload-Offset"] == str(len(sent))

    served = courier.raw.get(f"/api/sync/files/{sha}")
    assert served.status_code == 200
    stored = served.data
    assert stored != sent and len(stored) < len(sent)
    assert_only_capture_time_and_gps(stored)  # capture time and GPS: yes; anything else: no
    assert_upright(stored)
    # What is served describes the stored bytes, not the uploaded ones.
    assert served.headers["Content-Type"] == "image/jpeg"
    assert int(served.headers["Content-Length"]) == len(stored)
    assert stored == files.path_for(sha).read_bytes()
    etag = served.headers["ETag"]
    again = courier.raw.get(f"/api/sync/files/{sha}", headers={"If-None-Match": etag})
    assert again.status_code == 304
    # Announcing it again is still idempotent.
    assert Uploader(courier).begin(sent)[1].json["complete"] is True


def test_a_signature_stays_a_valid_lossless_png(courier):
    sent = signature_png()
    sha, done = upload(courier, sent, "image/png")
    assert done.json["complete"] is True
    served = courier.raw.get(f"/api/sync/files/{sha}")
    assert served.headers["Content-Type"] == "image/png"
    assert int(served.headers["Content-Length"]) == len(served.data)
    with Image.open(io.BytesIO(served.data)) as stored, Image.open(io.BytesIO(sent)) as pad:
        assert stored.format == "PNG" and stored.size == pad.size
        assert stored.convert("RGBA").tobytes() == pad.convert("RGBA").tobytes()


def assert_refused_and_nothing_stored(courier, sha, response, status, reason):
    assert response.status_code == status, response.json
    assert response.json["error"] == reason and response.json["offset"] == 0
    assert response.json["message"] != reason  # a sentence for the user, not the code
    assert response.headers["Upload-Offset"] == "0"
    stored = db.session.get(StoredFile, sha)
    db.session.refresh(stored)
    assert not stored.complete and stored.received == 0 and stored.completed_at is None
    assert not files.path_for(sha).exists()
    assert not files.path_for(sha, partial=True).exists()
    assert courier.raw.get(f"/api/sync/files/{sha}").json["complete"] is False


def test_a_decompression_bomb_is_refused_before_it_is_decoded(courier):
    bomb = png_claiming(30000, 30000)  # 900 megapixels in a few kilobytes
    assert len(bomb) < 100_000
    sha, response = upload(courier, bomb, "image/png")
    assert_refused_and_nothing_stored(courier, sha, response, 413, "too_many_pixels")


def test_a_truncated_photo_is_refused_with_a_reason(courier):
    whole = jpeg(colour=(9, 9, 9))
    cut = whole[: len(whole) * 2 // 3]
    sha, response = upload(courier, cut, "image/jpeg")
    assert_refused_and_nothing_stored(courier, sha, response, 415, "damaged_image")
    # The whole photo under its own hash still goes through.
    assert upload(courier, whole, "image/jpeg")[1].json["complete"] is True


# ----- creation with upload: a small file in one request ------------------------------------


def test_a_small_file_is_announced_and_sent_in_one_request(courier):
    data = signature_png()
    sha = hashlib.sha256(data).hexdigest()
    phone = Phone(courier, PHONE)
    assert phone.push([note(1, signature=sha)]).json["results"][0]["files_missing"] == [sha]
    done = Uploader(courier).create(sha, data, "image/png")
    assert done.status_code == 200, done.json
    assert done.json == {"sha256": sha, "size": len(data), "offset": len(data), "complete": True}
    assert done.headers["Upload-Offset"] == str(len(data))
    assert courier.raw.get(f"/api/sync/files/{sha}").headers["Content-Type"] == "image/png"
    again = phone.push([note(2, signature=sha)]).json["results"][0]
    assert again["status"] == "applied" and "files_missing" not in again


@pytest.mark.parametrize("one_request", [True, False])
def test_the_same_new_file_from_two_phones_at_once_is_stored_once(courier, one_request):
    """Two couriers photograph the same crate: the second upload's row meets the first's."""
    data = signature_png()
    sha = hashlib.sha256(data).hexdigest()
    other_courier = db.session.scalar(select(User).where(User.username == "courier2"))

    raced = []

    def the_other_phone_gets_there_first(session, _context, _instances):
        # Just before this request inserts the file's row, another request commits it.
        if raced or not any(isinstance(o, StoredFile) for o in session.new):
            return
        raced.append(True)
        with db.engine.begin() as other:
            other.execute(
                insert(StoredFile).values(
                    sha256=sha,
                    org_id=other_courier.org_id,
                    uploaded_by_id=other_courier.id,
                    content_type="image/png",
                    size=len(data),
                    received=0,
                    complete=False,
                )
            )

    event.listen(db.session, "before_flush", the_other_phone_gets_there_first)
    up = Uploader(courier)
    if one_request:
        answer = up.create(sha, data, "image/png")
        assert answer.status_code == 200, answer.json
        assert answer.json["complete"] is True
    else:
        _, announced = up.begin(data, "image/png")
        assert announced.status_code == 200, announced.json
        assert announced.json["offset"] == 0
        assert up.send(sha, 0, data).json["complete"] is True
    event.remove(db.session, "before_flush", the_other_phone_gets_there_first)
    assert raced
    db.session.expire_all()
    assert db.session.get(StoredFile, sha).complete


def test_one_request_answers_as_announcing_then_sending_would(courier):
    data = jpeg(colour=(40, 80, 160))
    up = Uploader(courier)
    sha, _ = up.begin(data)
    half = len(data) // 2
    up.send(sha, 0, data[:half])
    # The server has part of it (sent from another attempt): go on from there.
    resumed = up.create(sha, data)
    assert resumed.status_code == 409 and resumed.json["error"] == "offset_mismatch"
    assert resumed.json["offset"] == half and resumed.headers["Upload-Offset"] == str(half)
    assert up.send(sha, half, data[half:]).json["complete"] is True
    # The server has it all (the same photo in a second record): nothing to send.
    known = up.create(sha, data)
    assert known.status_code == 200
    assert known.json == {"sha256": sha, "size": len(data), "offset": len(data), "complete": True}


def test_a_larger_file_may_be_announced_with_its_first_piece(courier):
    data = jpeg(colour=(120, 60, 30))
    sha = hashlib.sha256(data).hexdigest()
    up = Uploader(courier)
    half = len(data) // 2
    first = up.create(sha, data[:half], length=len(data))
    assert first.status_code == 200
    assert first.json == {"sha256": sha, "size": len(data), "offset": half, "complete": False}
    assert up.send(sha, half, data[half:]).json["complete"] is True
    assert courier.raw.get(f"/api/sync/files/{sha}").data == data


def test_one_request_is_refused_as_announcing_then_sending_would(courier):
    up = Uploader(courier)
    data = jpeg(colour=(5, 50, 5))
    sha = hashlib.sha256(data).hexdigest()
    wrong_type = up.create(sha, data, content_type="application/x-php")
    assert wrong_type.status_code == 415 and wrong_type.json["error"] == "unsupported_type"
    too_large = up.create(sha, data, length=50 * 1024 * 1024)
    assert too_large.status_code == 413 and too_large.json["error"] == "too_large"
    longer_than_said = up.create(sha, data, length=len(data) - 1)
    assert longer_than_said.status_code == 413 and longer_than_said.json["error"] == "too_large"
    no_length = up.create(sha, data, length="")
    assert no_length.status_code == 400 and no_length.json["error"] == "invalid"
    assert db.session.get(StoredFile, sha) is None  # none of these announced it

    damaged = up.create(sha, data[:-10] + b"0123456789")
    assert damaged.status_code == 422 and damaged.json["error"] == "hash_mismatch"
    assert damaged.headers["Upload-Offset"] == "0"
    assert courier.raw.head(f"/api/sync/files/{sha}").headers["Upload-Offset"] == "0"
    assert up.create(sha, data).json["complete"] is True

    text = b"<?php system($_GET['x']); ?> not a photo at all"
    not_an_image = up.create(hashlib.sha256(text).hexdigest(), text)
    assert not_an_image.status_code == 415 and not_an_image.json["error"] == "not_an_image"
    bomb = png_claiming(30000, 30000)
    bomb_sha = hashlib.sha256(bomb).hexdigest()
    response = up.create(bomb_sha, bomb, content_type="image/png")
    assert_refused_and_nothing_stored(courier, bomb_sha, response, 413, "too_many_pixels")


def test_without_upload_length_an_unknown_file_is_not_found(courier):
    data = jpeg(colour=(70, 7, 70))
    sha = hashlib.sha256(data).hexdigest()
    assert Uploader(courier).send(sha, 0, data).status_code == 404
    assert db.session.get(StoredFile, sha) is None


def test_one_request_cannot_touch_another_organisations_file(courier, login):
    data = jpeg(colour=(11, 22, 33))
    add_stranger(username="outsider")
    outsider = Uploader(login("outsider"))
    sha = hashlib.sha256(data).hexdigest()
    assert outsider.create(sha, data).json["complete"] is True
    taken = Uploader(courier).create(sha, data)
    assert taken.status_code == 409 and taken.json["error"] == "exists_elsewhere"
    assert courier.raw.get(f"/api/sync/files/{sha}").status_code == 404

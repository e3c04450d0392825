"""The sync API against its own OpenAPI document, fuzzed with schemathesis, on SQLite and
PostgreSQL: logged in as a courier, no request may get a 5xx or an answer the document does not
describe. Then the classic bad inputs, each of which must get a 4xx with a readable reason.

Bounded in time: a few examples per operation, no shrinking database, no deadline per example.
"""

import json
import os
import uuid
from datetime import UTC, datetime

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import select

from fieldapp.deliveries.models import Route
from fieldapp.extensions import db
from fieldapp.models import User
from fieldapp.sync import registry
from fieldapp.sync.engine import MAX_BATCH

# The upload pieces (PATCH) are raw bytes under their tus-like media type.
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")

PHONE = "5b0c2a5e-1f7b-4c3a-9d84-2c1e7a6f9b01"
EXAMPLES = 15  # per operation and mode: about 15 s per back end on this machine
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture
def courier(login):
    return login("courier1", device_id=PHONE)


def _auth(courier) -> tuple[dict, dict]:
    cookie = courier.raw.get_cookie("session")
    return {"X-CSRFToken": courier.token}, {"session": cookie.value}


def _schema(app):
    """The document the app serves, as a client would read it."""
    document = app.test_client().get("/api/openapi.json").json
    schema = schemathesis.openapi.from_dict(document)
    schema.app, schema.location = app, "/api/openapi.json"
    return schema


def _aim_at_the_engine(case, mode: str) -> None:
    """A random device ID only ever gets 403: send valid batches from the courier's phone, each
    mutation of a real record type, so the engine and the types' schemas get the random data."""
    if mode != "positive" or case.operation.label != "POST /api/sync/push":
        return
    names = [t.name for t in registry.all_types()]
    case.body["device_id"] = PHONE
    for n, mutation in enumerate(case.body.get("mutations", [])):
        mutation["type"] = names[n % len(names)]


def _fuzz(operation, mode: str, headers: dict, cookies: dict) -> tuple[int, list[str]]:
    """Run one operation's generated cases; the number of calls and the failures."""
    strategy = operation.as_strategy(generation_mode=schemathesis.GenerationMode(mode))
    calls, failures = 0, []

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        # CI runs the same cases every time (a red build is then a change, not luck); a
        # developer's run explores new ones.
        derandomize=bool(os.environ.get("CI")),
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case):
        nonlocal calls
        calls += 1
        _aim_at_the_engine(case, mode)
        response = case.call(headers=headers, cookies=cookies)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as error:  # the checks that failed for this case
            failures.append(f"{operation.label} ({mode}): {str(error)[:800]}")

    try:
        run()
    except Unsatisfiable:  # nothing in the operation can be made invalid (no parameters)
        assert mode == "negative", operation.label
    return calls, failures


def test_the_sync_api_conforms_to_its_openapi_document_under_fuzzing(demo, courier):
    schema = _schema(demo)
    headers, cookies = _auth(courier)
    failures, calls = [], 0
    for result in schema.get_all_operations():
        for mode in ("positive", "negative"):
            made, failed = _fuzz(result.ok(), mode, headers, cookies)
            calls, failures = calls + made, failures + failed
    print(f"schemathesis: {calls} requests")
    assert not failures, "\n\n".join(sorted(set(failures))[:20])


# ----- bad input by hand ----------------------------------------------------------------------


def _push(courier, body, content_type="application/json"):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return courier.raw.post(
        "/api/sync/push",
        data=data,
        content_type=content_type,
        headers={"X-CSRFToken": courier.token, "Accept-Language": "en"},
    )


def _mutation(seq: int, type_="delivery.arrival", payload=None) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "seq": seq,
        "type": type_,
        "payload": {"id": str(uuid.uuid4()), **(payload or {})},
        "device_time": datetime.now(UTC).isoformat(),
    }


def _readable(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.json
    assert body["error"] and len(body["message"]) > 10, body
    return body


MALFORMED = [
    '{"device_id": "' + PHONE + '", "mutations": [',  # cut off
    "not json at all",
    "[]",  # JSON, but not an object
    "null",
    "\xff\xfe{}",
]
WRONG_TYPES = [
    {"device_id": 42, "mutations": []},
    {"device_id": PHONE, "mutations": "all of them"},
    {"device_id": PHONE, "mutations": [{"id": "x", "seq": "first", "type": 7}]},
    {"device_id": PHONE, "mutations": [{**_mutation(1), "device_time": "yesterday"}]},
    {"device_id": PHONE, "mutations": [{**_mutation(1), "payload": ["not", "an", "object"]}]},
    {"device_id": PHONE},
]


def test_malformed_wrong_typed_and_oversized_pushes_get_400_or_413_with_a_reason(courier, demo):
    for body in MALFORMED:
        assert _readable(_push(courier, body), 400)["error"] == "malformed_json", body
    form = _push(courier, "device_id=x", content_type="application/x-www-form-urlencoded")
    assert _readable(form, 400)["error"] == "malformed_json"
    for batch in WRONG_TYPES:
        body = _readable(_push(courier, batch), 400)
        assert body["error"] == "invalid_batch" and body["fields"], (batch, body)
    too_many = {"device_id": PHONE, "mutations": [_mutation(n) for n in range(1, MAX_BATCH + 2)]}
    assert "mutations" in _readable(_push(courier, too_many), 400)["fields"]
    huge = "x" * (demo.config["MAX_CONTENT_LENGTH"] + 1)
    _readable(_push(courier, {"device_id": PHONE, "mutations": [], "padding": huge}), 413)


CHECKED = dict.fromkeys(("no_faults", "condition", "licence", "registration", "insurance"), True)


def test_an_unknown_record_type_is_refused_with_a_reason_and_the_rest_applies(courier):
    courier_id = db.session.scalar(select(User.id).where(User.username == "courier1"))
    route = db.session.scalar(select(Route).where(Route.courier_id == courier_id))
    stop_id = min(route.stops, key=lambda s: s.sequence).id
    batch = {
        "device_id": PHONE,
        "mutations": [
            _mutation(1, "delivery.teleport", {"stop_id": stop_id}),
            _mutation(2, "delivery.vehicle_check", {"route_id": route.id, **CHECKED}),
        ],
    }
    response = _push(courier, batch)
    assert response.status_code == 200, response.get_data(as_text=True)
    unknown, check = response.json["results"]
    assert unknown["status"] == "rejected" and unknown["reason"] == "unknown_type", unknown
    assert len(unknown["message"]) > 10, unknown
    assert check["status"] == "applied", check


def test_wrong_payload_types_are_refused_per_field(courier):
    batch = {
        "device_id": PHONE,
        "mutations": [_mutation(1, "delivery.arrival", {"stop_id": 12, "latitude": "north"})],
    }
    response = _push(courier, batch)
    assert response.status_code == 200, response.get_data(as_text=True)
    (result,) = response.json["results"]
    assert result["status"] == "rejected" and {"stop_id", "latitude"} <= set(result["fields"])


OTHER_BAD_REQUESTS = [
    ("POST", "/api/sync/files/" + "a" * 64, "{"),
    ("POST", "/api/sync/files/" + "a" * 64, {"size": "big", "content_type": "image/png"}),
    ("POST", "/api/sync/files/" + "a" * 64, {"size": 10, "content_type": "text/html"}),
    ("POST", "/api/sync/files/" + "a" * 64, {"size": -1, "content_type": "image/png"}),
    ("POST", "/api/sync/files/../../etc/passwd", {"size": 1, "content_type": "image/png"}),
    ("POST", "/api/sync/files/" + "A" * 64, {"size": 1, "content_type": "image/png"}),
    ("PATCH", "/api/sync/files/" + "b" * 64, "x"),
    ("GET", "/api/sync/pull?cursor=-5&device_id=not-a-phone", None),
    # Found by the fuzzing above: present but empty is not a number, a date is not a time.
    ("GET", "/api/sync/pull?cursor=", None),
    ("GET", "/api/sync/pull?cursor=0&pending=", None),
    ("GET", "/api/sync/pull?cursor=0&pending=1&oldest_pending=2026-11-24", None),
    ("POST", "/api/push/subscription", "[1, 2]"),
]


def test_other_bad_api_requests_get_a_4xx_with_a_reason(courier):
    for method, url, body in OTHER_BAD_REQUESTS:
        data = body if isinstance(body, str | None) else json.dumps(body)
        response = courier.raw.open(
            url,
            method=method,
            data=data,
            content_type="application/json",
            headers={"X-CSRFToken": courier.token, "Upload-Offset": "0"},
        )
        what = (method, url, body, response.status_code, response.get_data(as_text=True)[:200])
        assert 400 <= response.status_code < 500, what
        assert response.is_json and response.json.get("message"), what


def test_a_device_clock_centuries_off_is_not_a_server_error(courier):
    """A phone whose clock says year 2 (a dead RTC battery) gets an answer, not a 500.

    Found by the fuzzing above: the skew in seconds overflowed the INTEGER column on PostgreSQL.
    """
    batch = {"device_id": PHONE, "mutations": [_mutation(1)]}
    batch["mutations"][0]["device_time"] = "0002-01-01T03:00:00+00:00"
    response = _push(courier, batch)
    assert response.status_code == 200, response.get_data(as_text=True)
    # Answered like any other record (this payload lacks its stop, so it is refused for that).
    assert response.json["results"][0]["status"] in ("applied", "rejected")

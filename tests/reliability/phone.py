"""A simulated phone: an outbox sent the way static/js/sender.js sends it, over real HTTP.

Every record is stored in the outbox before anything is sent. A mutation keeps its ``id``,
``seq`` and content once sent; any answer but 200, or no answer at all, means nothing is
known, and the same mutations go again on the next flush. One flush at a time per phone
(``lock``, like ``navigator.locks``); the fault campaign takes the lock to drive a phone by
hand.
"""

import json
import os
import random
import re
import socket
import threading
import time
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import urlsplit

import requests

PASSWORD = "demo-2026"
BATCH = 100  # as static/js/sender.js
MAX_BATCH = 500  # what the server accepts in one push
TIMEOUT = (3.0, 4.0)  # connect, read: a phone on a bad network gives up after a few seconds
UNSENT = ("pending", "sending")
SENT_FIELDS = ("id", "seq", "type", "payload", "device_time")
SHANGHAI = timezone(timedelta(hours=8))
NO_ANSWER = "no answer"  # sent completely; no answer, or not a 200
CUT_OFF = "cut off"  # the connection was lost in the middle of the body
_TOKEN = re.compile(r'name="csrf-token" content="([^"]+)"')


def uuid7() -> str:
    """A time-ordered UUID (version 7), as the phone makes for every mutation."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (
        (millis & (2**48 - 1)) << 80
        | 0x7 << 76
        | ((rand >> 62) & 0xFFF) << 64
        | 0b10 << 62
        | (rand & (2**62 - 1))
    )
    return str(uuid.UUID(int=value))


class Tally:
    """Counters shared by every phone and the campaign."""

    def __init__(self):
        self._lock = threading.Lock()
        self.counts: Counter = Counter()

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counts[name] += n


class Unavailable(Exception):
    """No usable answer: the phone keeps its mutations and sends the same ones later."""


class Phone:
    def __init__(self, url: str, username: str, name: str, tally: Tally):
        self.url = url
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.username = username
        self.name = name
        self.tally = tally
        self.device_id = str(uuid.uuid4())
        self.http = requests.Session()
        self.token: str | None = None
        self.lock = threading.RLock()  # one flush at a time
        self._data = threading.Lock()  # the outbox itself
        self.outbox: list[dict] = []
        self.counter = 0  # the last seq handed out
        self.cursor = 0
        self.pulled: dict[tuple[str, str], dict | None] = {}  # (entity, id) -> data
        self.device_seq: int | None = None  # what the server last said it has processed
        # mutation id -> what became of each send: the server's status, NO_ANSWER or CUT_OFF
        self.history: defaultdict[str, list[str]] = defaultdict(list)

    # ----- records -------------------------------------------------------------------

    def record(self, title: str, record_type: str = "test.note") -> dict:
        """A record made on the phone: stored in the outbox first, sent later.

        ``test.note`` (tests/sync_types.py) is a plain fact; ``complaint.intake`` is a real
        domain fact: ORM rows, the audit chain, a register number under a row lock, and a
        change published to the taker's phones.
        """
        record_id = str(uuid.uuid4())
        if record_type == "test.note":
            payload = {"id": record_id, "title": title, "amount": self.counter + 1}
        else:
            payload = {
                "id": record_id,
                "client_name": "福民便利店",
                "complainant": "顾客",
                "channel": "field",
                "subject": title,
                "category": "other",
                "cause_class": "other",
                "severity": "minor",
            }
        with self._data:
            self.counter += 1
            mutation = {
                "id": uuid7(),
                "seq": self.counter,
                "type": record_type,
                "payload": payload,
                "device_time": datetime.now(SHANGHAI).isoformat(timespec="milliseconds"),
                "status": "pending",
                "created_at": datetime.now(UTC),
            }
            self.outbox.append(mutation)
        self.tally.add("created")
        return mutation

    def unsent(self) -> list[dict]:
        with self._data:
            return sorted((m for m in self.outbox if m["status"] in UNSENT), key=lambda m: m["seq"])

    def take_batch(self, limit: int = BATCH) -> list[dict]:
        """The next mutations to send, in seq order; from here they are frozen."""
        queue = self.unsent()[:limit]
        with self._data:
            for mutation in queue:
                mutation["status"] = "sending"
        return queue

    def body(self, queue: list[dict]) -> bytes:
        mutations = [{k: m[k] for k in SENT_FIELDS} for m in queue]
        return json.dumps({"device_id": self.device_id, "mutations": mutations}).encode()

    # ----- HTTP ----------------------------------------------------------------------

    def _request(self, method: str, path: str, timeout=TIMEOUT, headers=None, **kwargs):
        headers = dict(headers or {})
        if self.token:
            headers["X-CSRFToken"] = self.token
        try:
            response = self.http.request(
                method, self.url + path, headers=headers, timeout=timeout, **kwargs
            )
        except requests.ReadTimeout as error:
            self.tally.add("read_timeouts")
            raise Unavailable(f"{method} {path}: no answer in time") from error
        except requests.RequestException as error:
            self.tally.add("connection_errors")
            raise Unavailable(f"{method} {path}: {type(error).__name__}") from error
        if response.status_code >= 500:
            self.tally.add("http_5xx")
        return response

    def _check_session(self, response) -> None:
        """401 (log in again) and 403 unknown_device: keep everything, log in, send again."""
        if response.status_code in (401, 403) or (
            response.status_code == 400 and _error_of(response) == "csrf"
        ):
            error = _error_of(response)
            if error == "device_revoked":
                raise AssertionError(f"{self.name}: the device was revoked")
            self.tally.add(f"http_{response.status_code}_{error}")
            self.token = None
            raise Unavailable(f"{self.name}: log in again ({response.status_code} {error})")

    def log_in(self) -> None:
        self.token = None
        page = self._request("GET", "/login")
        token = _TOKEN.search(page.text)
        if page.status_code != 200 or not token:
            raise Unavailable(f"login page answered {page.status_code}")
        response = self._request(
            "POST",
            "/login",
            data={
                "username": self.username,
                "password": PASSWORD,
                "device_id": self.device_id,
                "remember": "y",
                "csrf_token": token.group(1),
            },
            allow_redirects=False,
        )
        if response.status_code != 302:
            raise Unavailable(f"login answered {response.status_code}")
        home = self._request("GET", "/")  # a new session has a new CSRF token
        token = _TOKEN.search(home.text)
        if home.status_code != 200 or not token:
            raise Unavailable(f"home page answered {home.status_code}")
        self.token = token.group(1)
        self.tally.add("logins")

    # ----- sync ----------------------------------------------------------------------

    def flush(self, timeout=TIMEOUT) -> None:
        """Push everything unsent (batch by batch), then pull. Raises ``Unavailable``."""
        with self.lock:
            if self.token is None:
                self.log_in()
            for _round in range(50):
                queue = self.take_batch()
                if not queue:
                    break
                self.push(queue, timeout)
            self.pull(timeout)

    def push(self, queue: list[dict], timeout=TIMEOUT) -> None:
        self.tally.add("pushes")
        self.tally.add("mutations_sent", len(queue))
        try:
            response = self._request(
                "POST",
                "/api/sync/push",
                data=self.body(queue),
                headers={"Content-Type": "application/json"},
                timeout=timeout,
            )
            self._check_session(response)
            if response.status_code != 200:
                self.tally.add(f"push_http_{response.status_code}")
                raise Unavailable(f"push answered {response.status_code}")
        except Unavailable:
            self._note(queue, NO_ANSWER)
            raise
        self._take_answer(queue, response.json())

    def _note(self, queue: list[dict], event: str) -> None:
        with self._data:
            for mutation in queue:
                self.history[mutation["id"]].append(event)

    def _take_answer(self, queue: list[dict], answer: dict) -> None:
        """What sender.js does with the results: mark sent, keep, or renumber."""
        by_id = {r["id"]: r for r in answer["results"]}
        renumber = False
        with self._data:
            for mutation in queue:
                result = by_id.get(mutation["id"])
                if result is not None:
                    self.history[mutation["id"]].append(result["status"])
                    self.tally.add(f"answer_{result['status']}")
                else:
                    self.history[mutation["id"]].append(NO_ANSWER)
                if result is None or result["status"] == "retry":
                    renumber = renumber or result is not None
                elif result.get("reason") == "stale_sequence":
                    renumber = True
                elif result["status"] == "rejected":
                    mutation["status"] = "rejected"
                    mutation["reason"] = result.get("reason")
                else:
                    mutation["status"] = "synced"
            if renumber:
                self._renumber(answer["device_seq"])
        self.device_seq = answer["device_seq"]

    def _renumber(self, server_seq: int) -> None:
        """outbox.renumber: the unsent mutations follow what the server has processed."""
        self.tally.add("renumbered")
        seq = server_seq
        for mutation in sorted(self.outbox, key=lambda m: m["seq"]):
            if mutation["status"] in UNSENT:
                seq += 1
                mutation["seq"] = seq
        self.counter = max(self.counter, seq)

    def pull(self, timeout=TIMEOUT) -> None:
        with self._data:
            waiting = [m for m in self.outbox if m["status"] in (*UNSENT, "rejected")]
        oldest = min((m["created_at"] for m in waiting), default=None)
        for _page in range(20):
            params = {
                "cursor": self.cursor,
                "device_id": self.device_id,
                "pending": len(waiting),
                "oldest_pending": oldest.isoformat() if oldest else "",
            }
            response = self._request("GET", "/api/sync/pull", params=params, timeout=timeout)
            self._check_session(response)
            self.tally.add("pulls")
            if response.status_code != 200:
                self.tally.add(f"pull_http_{response.status_code}")
                return  # as sender.js: the records are safe; the next flush pulls again
            answer = response.json()
            self.cursor = answer["cursor"]
            self.device_seq = answer["device_seq"]
            self.tally.add("changes_pulled", len(answer["changes"]))
            for change in answer["changes"]:  # upserts keyed by (entity, id)
                self.pulled[(change["entity"], change["id"])] = change["data"]
            if not answer["more"]:
                return

    # ----- faults on the phone's side ------------------------------------------------

    def push_cut_off(self, how: str) -> int | None:
        """Send the head and half the body of the next push, then lose the connection.

        ``close``: the phone closes the socket; ``stall``: it waits for an answer that cannot
        come (the server waits for the rest of the body) until its own timeout, then closes;
        ``half_close``: it ends its side of the stream and reads what the server says.
        """
        with self.lock:
            queue = self.take_batch(MAX_BATCH)
            self._note(queue, CUT_OFF)
            body = self.body(queue)
            cookies = "; ".join(f"{c.name}={c.value}" for c in self.http.cookies)
            head = (
                "POST /api/sync/push HTTP/1.1\r\n"
                f"Host: {self.host}:{self.port}\r\n"
                "Content-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n"
                f"X-CSRFToken: {self.token}\r\n"
                f"Cookie: {cookies}\r\n"
                "Connection: close\r\n\r\n"
            ).encode()
            status = None
            with socket.create_connection((self.host, self.port), timeout=5) as sock:
                sock.sendall(head + body[: len(body) // 2])
                if how == "stall":
                    sock.settimeout(1.5)
                    try:
                        sock.recv(1)
                    except TimeoutError:
                        self.tally.add("read_timeouts")
                elif how == "half_close":
                    sock.shutdown(socket.SHUT_WR)
                    sock.settimeout(10)
                    first = sock.recv(64).split(b"\r\n", 1)[0].split()
                    status = int(first[1]) if len(first) > 1 else None
                elif how != "close":
                    raise ValueError(how)
            self.tally.add("pushes_cut_off")
            return status

    # ----- the phone's day -----------------------------------------------------------

    def work(self, stop: threading.Event, rng: random.Random) -> None:
        """Make notes and sync, with back-off after failures, until ``stop``."""
        backoff = 0.1
        while not stop.is_set():
            for _ in range(rng.randint(1, 2)):
                kind = "complaint.intake" if rng.random() < 0.25 else "test.note"
                self.record(f"{self.name}-{self.counter + 1}", kind)
            try:
                self.flush()
            except Unavailable:
                self.tally.add("flush_failures")
                stop.wait(backoff * (1 + rng.random()))
                backoff = min(backoff * 2, 1.0)
                continue
            backoff = 0.1
            stop.wait(rng.uniform(0.2, 0.6))

    def drain(self, deadline: float) -> bool:
        """Sync until nothing is left to send (and one pull after it), or ``deadline``."""
        backoff = 0.1
        while time.monotonic() < deadline:
            try:
                self.flush()
                if not self.unsent():
                    return True
            except Unavailable:
                self.tally.add("flush_failures")
            time.sleep(backoff)
            backoff = min(backoff * 2, 1.0)
        return not self.unsent()


def _error_of(response) -> str | None:
    try:
        return response.json().get("error")
    except ValueError:
        return None

"""A push service for tests: a local HTTP server that records what the app posts to it.

Subscriptions are made here the way a browser makes them: a P-256 key pair and a 16-byte auth
secret per subscription. What arrives is checked with independent code: the VAPID JWT with
PyJWT, the body with ``http_ece`` (RFC 8188/8291), never with the app's own code.
"""

import base64
import json
import os
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Phone:
    """One browser's subscription: what the page sends to the server, and the private half."""

    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes
    info: dict = field(default_factory=dict)

    @property
    def p256dh(self) -> str:
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return b64url(point)

    def as_json(self) -> dict:
        keys = {"p256dh": self.p256dh, "auth": b64url(self.auth)}
        return {"endpoint": self.endpoint, "keys": keys}

    def decrypt(self, received: Received) -> dict:
        plain = http_ece.decrypt(
            received.body, private_key=self.private_key, auth_secret=self.auth, version="aes128gcm"
        )
        return json.loads(plain)


class PushService:
    """``with PushService() as service``: a server on 127.0.0.1 with a free port."""

    def __init__(self, fast: bool = False):
        self.received: list[Received] = []
        self.scripts: dict[str, list[tuple[int, dict]]] = {}
        self.phones: dict[str, Phone] = {}
        self._lock = threading.Condition()
        self.fast = fast  # the benchmark only counts
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                status, headers = service._answer(self.path)
                if not service.fast or status != 201:
                    with service._lock:
                        service.received.append(
                            Received(self.path, dict(self.headers.items()), body, time.monotonic())
                        )
                        service._lock.notify_all()
                else:
                    with service._lock:
                        service.count += 1
                        service._lock.notify_all()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.count = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def _answer(self, path: str) -> tuple[int, dict]:
        with self._lock:
            script = self.scripts.get(path)
            if script:
                return script.pop(0)
        return 201, {}

    def respond(self, phone: Phone, *answers: tuple[int, dict]) -> None:
        """The next answers for this phone's endpoint, then 201 Created again."""
        self.scripts[phone.endpoint.removeprefix(self.url)] = list(answers)

    def phone(self, name: str | None = None) -> Phone:
        name = name or b64url(os.urandom(9))
        phone = Phone(
            endpoint=f"{self.url}/push/{name}",
            private_key=ec.generate_private_key(ec.SECP256R1()),
            auth=os.urandom(16),
        )
        self.phones[phone.endpoint.removeprefix(self.url)] = phone
        return phone

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._lock.wait(left)
            return list(self.received)

    def for_phone(self, phone: Phone) -> list[Received]:
        path = phone.endpoint.removeprefix(self.url)
        with self._lock:
            return [r for r in self.received if r.path == path]


def verify_vapid(received: Received, application_server_key: str, audience: str) -> dict:
    """Check the Authorization header against the app's public key; return the JWT claims."""
    scheme, _sep, params = received.headers["Authorization"].partition(" ")
    assert scheme == "vapid"
    fields = dict(part.strip().split("=", 1) for part in params.split(","))
    assert fields["k"] == application_server_key
    point = b64url_decode(fields["k"])
    public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    return jwt.decode(fields["t"], key=public_key, algorithms=["ES256"], audience=audience)

"""A stand-in for the parts of GitHub that Keygate calls: the secret-scanning key list and the
secret-scanning alerts API, on a loopback HTTP server, plus a signer with a test ECDSA key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

KEYS_PATH = "/meta/public_keys/secret_scanning"


class Signer:
    """A P-256 key pair named by ``identifier``, signing bodies as GitHub does."""

    def __init__(self, identifier: str) -> None:
        self.identifier = identifier
        self.private_key = ec.generate_private_key(ec.SECP256R1())

    def public_pem(self) -> str:
        return (
            self.private_key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    def sign(self, body: bytes) -> str:
        return base64.b64encode(self.private_key.sign(body, ec.ECDSA(hashes.SHA256()))).decode()

    def headers(self, body: bytes) -> dict[str, str]:
        return {
            "HTTP_GITHUB_PUBLIC_KEY_IDENTIFIER": self.identifier,
            "HTTP_GITHUB_PUBLIC_KEY_SIGNATURE": self.sign(body),
        }


def hub_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class FakeGitHub:
    """``with FakeGitHub() as gh:`` — ``gh.url``, ``gh.signers``, ``gh.alerts[(repo, n)] = {...}``,
    ``gh.requests`` (method, path, headers) of every request served."""

    def __init__(self) -> None:
        self.signers: list[Signer] = []
        self.alerts: dict[tuple[str, int], dict[str, Any]] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.keys_status = 200
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake.requests.append(("GET", self.path, dict(self.headers)))
                status, body = fake.answer(self.path, dict(self.headers))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.keys_url = self.url + KEYS_PATH
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def add_signer(self, identifier: str) -> Signer:
        signer = Signer(identifier)
        self.signers.append(signer)
        return signer

    def answer(self, path: str, headers: dict[str, str]) -> tuple[int, Any]:
        if path == KEYS_PATH:
            keys = [
                {"key_identifier": s.identifier, "key": s.public_pem(), "is_current": i == 0}
                for i, s in enumerate(self.signers)
            ]
            return self.keys_status, {"public_keys": keys}
        for (repo, number), alert in self.alerts.items():
            if path == f"/repos/{repo}/secret-scanning/alerts/{number}":
                if headers.get("Authorization") != "Bearer test-github-token":
                    return 401, {"message": "Bad credentials"}
                return 200, alert
        return 404, {"message": "Not Found"}

    def key_list_fetches(self) -> int:
        return sum(1 for _, path, _ in self.requests if path == KEYS_PATH)

    def __enter__(self) -> FakeGitHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

"""Real receivers on loopback for the notification tests: an SMTP server (aiosmtpd) that keeps
every message, and an HTTP server that verifies each webhook's Standard Webhooks signature with
the ``standardwebhooks`` library before answering (2xx, or the status the test asks for)."""

from __future__ import annotations

import email
import email.policy
import http.server
import threading
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.support.live import free_port


class SMTPServer:
    """``with SMTPServer() as smtp:`` … ``smtp.messages`` (parsed), ``smtp.port``."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.port = free_port()
        outer = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                outer.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SMTPServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


class WebhookReceiver:
    """An HTTP endpoint that verifies signatures with ``secret`` (set before deliveries arrive).
    ``verified`` holds the parsed bodies that passed with their headers; ``refused`` counts the
    rest; ``answer`` is the status it replies with."""

    def __init__(self) -> None:
        self.secret = ""
        self.answer = 204
        self.verified: list[tuple[dict[str, str], Any]] = []
        self.refused = 0
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {name.lower(): value for name, value in self.headers.items()}
                try:
                    payload = Webhook(outer.secret).verify(body, headers)
                except WebhookVerificationError:
                    outer.refused += 1
                    self.send_response(401)
                else:
                    outer.verified.append((headers, payload))
                    self.send_response(outer.answer)
                self.send_header("content-length", "0")
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)

    def __enter__(self) -> WebhookReceiver:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

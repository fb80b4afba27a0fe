"""A real fake upstream HTTP server for live-server tests.

Keygate runs as a subprocess in those tests and forwards to this server on loopback,
so everything between the two is real HTTP. Normal answers come from the built-in
demo provider (:mod:`gateway.providers.demo`); the request's ``model`` selects a
fault instead (see :data:`FAULT_MODELS`), so a test drives every failure through
the gateway with ordinary SDK calls.

Two ways to run it:

- in-process: ``UpstreamServer(expect_key="sk-upstream").start()`` serves from a
  background thread with its own event loop (a sync pytest fixture can hold it);
- as a process: ``python -m tests.support.upstream --port 0 --portfile /tmp/port``
  writes the bound port to the portfile once listening.

A test may script tool calls: ``server.script = fn`` where ``fn(endpoint, body)`` returns a
:class:`ScriptedCall` (the demo then calls exactly that tool, with exactly those arguments, in
the request's own protocol, plain or streamed) or ``None`` (the demo answers as usual, and after
a tool result that answer is "The tool answered: <result>"). Agents such as Claude Code and
Codex offer dozens of tools; a script picks the one the test needs.

Every request to ``/v1/...`` is recorded (method, path, lowercased headers, parsed
JSON body, times, and for streams each chunk's send time and whether the client
disconnected first). Records are read through ``server.requests`` / ``server.reset()``
or over HTTP: ``GET /_control/requests``, ``POST /_control/reset``. ``server.fault`` (or
``POST /_control/fault``) makes every request a fault whatever its model: an upstream that
goes down and comes back, for failover tests.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import re
import secrets
import signal
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from gateway.providers import demo

HOST = "127.0.0.1"

#: Models that select a fault instead of the demo answer.
FAULT_MODELS: tuple[str, ...] = (
    "mock-error-400",
    "mock-error-401",
    "mock-error-429",
    "mock-error-500",
    "mock-error-503",
    "mock-error-529",
    "mock-slow-first-byte",
    "mock-stall",
    "mock-slow-stream",
    "mock-invalid-json",
    "mock-redirect",
    "mock-huge",
    "mock-reset",
    "mock-linger",
)

OPENAI_ENDPOINTS = (
    "chat/completions",
    "completions",
    "embeddings",
    "images/generations",
    "responses",
)
ANTHROPIC_ENDPOINTS = ("messages", "messages/count_tokens")

#: Sent with every answer to a body with ``"mock_headers": true``: what real upstreams send
#: that clients use (and a cookie and a hop-by-hop header that must never pass a gateway).
MOCK_RESPONSE_HEADERS = {
    "openai-processing-ms": "12",
    "x-ratelimit-remaining-requests": "4999",
    "anthropic-ratelimit-requests-remaining": "49",
    "retry-after-ms": "250",
    "x-should-retry": "true",
    "set-cookie": "upstream_session=secret; Path=/",
    "keep-alive": "timeout=5",
}

#: What ``GET /v1/models`` lists.
UPSTREAM_MODELS = ("mock-model-a", "mock-model-b")

REDIRECT_LOCATION = "http://127.0.0.1:1/elsewhere"
HUGE_BODY_BYTES = 20 * 1024 * 1024
SLOW_FIRST_BYTE_SECONDS = 5.0
SLOW_STREAM_CHUNKS = 20
SLOW_STREAM_DELAY_SECONDS = 0.1
# Chunks sent before mock-stall stalls and before mock-reset aborts the connection.
CHUNKS_BEFORE_FAULT = 2

_ERROR_MODEL = re.compile(r"mock-error-([45]\d\d)")
_OPENAI_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "model_not_found"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}
_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


@dataclass(frozen=True)
class ScriptedCall:
    """The tool call a script makes the upstream answer with."""

    name: str
    arguments: dict[str, Any]


#: ``script(endpoint, body)``: a tool call to answer with, or None for the demo's answer.
Script = Callable[[str, dict[str, Any]], ScriptedCall | None]


def _forcing(endpoint: str, body: dict[str, Any], call: ScriptedCall) -> dict[str, Any]:
    """``body`` with the one tool the demo must call (its schema a ``const`` of the arguments, which
    the demo's example value reproduces) and ``tool_choice`` naming it — the demo needs nothing else."""
    schema = {"const": call.arguments}
    if endpoint == "chat/completions":
        tool: dict[str, Any] = {"type": "function", "function": {"name": call.name, "parameters": schema}}
    elif endpoint == "messages":
        tool = {"name": call.name, "input_schema": schema}
    else:
        tool = {"type": "function", "name": call.name, "parameters": schema}
    return {**body, "tools": [tool], "tool_choice": {"name": call.name}}


# How often a stalled handler checks whether its client is still there.
_POLL_SECONDS = 0.02


class RequestLog:
    """Thread-safe record of the requests an upstream received.

    Each record is a JSON-able dict: ``id``, ``method``, ``path``, ``query``,
    ``headers`` (lowercased names), ``body`` (parsed JSON or ``None``),
    ``received_at`` (epoch seconds, comparable across processes), ``model``,
    ``stream``, ``status``, ``chunk_times`` (send time of each streamed chunk),
    ``completed`` / ``completed_at``, ``disconnected`` / ``disconnected_at`` (the
    client went away before the response ended) and ``aborted`` (``mock-reset``
    cut the connection on purpose).
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._records: list[dict[str, Any]] = []

    def add(self, record: dict[str, Any]) -> dict[str, Any]:
        with self._changed:
            record["id"] = len(self._records) + 1
            self._records.append(record)
            self._changed.notify_all()
        return record

    def update(self, record: dict[str, Any], **changes: Any) -> None:
        with self._changed:
            record.update(changes)
            self._changed.notify_all()

    def add_chunk_time(self, record: dict[str, Any]) -> None:
        with self._changed:
            record["chunk_times"].append(time.time())
            self._changed.notify_all()

    def snapshot(self) -> list[dict[str, Any]]:
        with self._changed:
            return copy.deepcopy(self._records)

    def reset(self) -> None:
        with self._changed:
            self._records = []
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float) -> list[dict[str, Any]]:
        """Block until ``predicate(records)`` holds and return the records.

        Raises ``TimeoutError`` after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                records = copy.deepcopy(self._records)
                if predicate(records):
                    return records
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"upstream requests never matched the condition: {records!r}")
                self._changed.wait(remaining)


# ------------------------------------------------------------------ error bodies


def _error_body(dialect: str, status: int, message: str) -> dict[str, Any]:
    if dialect == "anthropic":
        error_type = _ANTHROPIC_ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        return {"type": "error", "error": {"type": error_type, "message": message}}
    error_type, code = _OPENAI_ERROR_TYPES.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None)
    )
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}


def _json_response(status: int, body: Any, headers: dict[str, str]) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        content_type="application/json",
        headers=headers,
    )


# ---------------------------------------------------------------------- handler


def _credential(request: web.Request, dialect: str) -> str | None:
    """The upstream credential, from the headers the dialect accepts.

    OpenAI takes ``Authorization: Bearer``. Anthropic takes ``x-api-key`` and also
    Bearer: the ``anthropic`` SDK 2.x sends ``api_key`` as ``Authorization: Bearer``.
    """
    if dialect == "anthropic" and "x-api-key" in request.headers:
        return request.headers["x-api-key"]
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


class _Upstream:
    """The request handlers, bound to one request log and one expected credential."""

    def __init__(self, *, expect_key: str | None, log: RequestLog) -> None:
        self.expect_key = expect_key
        self.log = log
        self.closing = asyncio.Event()
        self.script: Script | None = None
        #: A fault model every request gets whatever model it asks for (None: as asked).
        self.fault: str | None = None

    # -- entry points

    async def handle_api(self, request: web.Request) -> web.StreamResponse:
        endpoint = request.path.removeprefix("/v1/")
        dialect = "anthropic" if endpoint.startswith("messages") else "openai"
        request_id = request.headers.get("x-request-id") or request.headers.get("request-id")
        headers = {"x-request-id": request_id or f"req_upstream_{uuid.uuid4().hex[:20]}"}
        if dialect == "anthropic":
            headers["request-id"] = headers["x-request-id"]

        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        model = body.get("model") if isinstance(body, dict) else None
        is_stream = isinstance(body, dict) and body.get("stream") is True and endpoint in demo.STREAMING_ENDPOINTS
        record = self.log.add(
            {
                "method": request.method,
                "path": request.path,
                "query": request.query_string,
                "headers": {name.lower(): value for name, value in request.headers.items()},
                "body": body,
                "received_at": time.time(),
                "model": model,
                "stream": is_stream,
                "status": None,
                "chunk_times": [],
                "completed": False,
                "completed_at": None,
                "disconnected": False,
                "disconnected_at": None,
                "aborted": False,
            }
        )
        try:
            response = await self._answer(request, record, endpoint, dialect, body, is_stream, headers)
        except asyncio.CancelledError:
            # handler_cancellation is on: aiohttp cancels the handler when the
            # client goes away.
            self._mark_disconnected(record)
            raise
        except ConnectionResetError:
            self._mark_disconnected(record)
            raise
        if not record["disconnected"]:
            self.log.update(record, completed=True, completed_at=time.time())
        return response

    async def handle_models(self, request: web.Request) -> web.Response:
        """``GET /v1/models``: the shape OpenAI and Anthropic share (``data[].id``)."""
        data = [{"id": name, "object": "model", "type": "model", "owned_by": "mock"} for name in UPSTREAM_MODELS]
        return web.json_response({"object": "list", "data": data, "has_more": False})

    async def handle_requests(self, request: web.Request) -> web.Response:
        return web.json_response(self.log.snapshot())

    async def handle_reset(self, request: web.Request) -> web.Response:
        self.log.reset()
        return web.json_response({"reset": True})

    async def handle_fault(self, request: web.Request) -> web.Response:
        """``POST /_control/fault`` ``{"fault": "mock-error-503"}`` (or null): every request's fault."""
        body = await request.json()
        fault = body.get("fault") if isinstance(body, dict) else None
        self.fault = fault if fault in FAULT_MODELS else None
        return web.json_response({"fault": self.fault})

    # -- dispatch

    async def _answer(
        self,
        request: web.Request,
        record: dict[str, Any],
        endpoint: str,
        dialect: str,
        body: Any,
        is_stream: bool,
        headers: dict[str, str],
    ) -> web.StreamResponse:
        def error(status: int, message: str) -> web.Response:
            self.log.update(record, status=status)
            if status == 429:
                headers["retry-after"] = "1"
            return _json_response(status, _error_body(dialect, status, message), headers)

        if endpoint not in OPENAI_ENDPOINTS + ANTHROPIC_ENDPOINTS or request.method != "POST":
            return error(404, f"mock upstream: no route for {request.method} {request.path}")
        if self.expect_key is not None:
            sent = _credential(request, dialect)
            if sent is None or not secrets.compare_digest(sent.encode(), self.expect_key.encode()):
                return error(401, "mock upstream: invalid API key")
        if not isinstance(body, dict):
            return error(400, "mock upstream: the request body is not a JSON object")

        if body.get("mock_headers") is True:
            headers.update(MOCK_RESPONSE_HEADERS)
        model = self.fault or body.get("model")
        if isinstance(model, str) and (match := _ERROR_MODEL.fullmatch(model)):
            return error(int(match.group(1)), f"mock upstream error {match.group(1)}")
        if model == "mock-slow-first-byte":
            await asyncio.sleep(_number(body.get("mock_delay"), SLOW_FIRST_BYTE_SECONDS))
        elif model == "mock-invalid-json":
            self.log.update(record, status=200)
            return web.Response(
                status=200,
                body=b"{not json",
                content_type="application/json",
                headers=headers,
            )
        elif model == "mock-redirect":
            self.log.update(record, status=307)
            return web.Response(status=307, headers={**headers, "Location": REDIRECT_LOCATION})
        elif model == "mock-huge":
            return self._huge(record, endpoint, body, headers)
        elif model == "mock-stall":
            return await self._stall(request, record, endpoint, body, is_stream, headers)
        elif model == "mock-reset":
            return await self._reset(request, record, endpoint, body, is_stream, headers)
        elif model == "mock-linger" and is_stream:
            return await self._linger(request, record, endpoint, body, headers)
        elif model == "mock-slow-stream" and is_stream:
            count = int(_number(body.get("mock_chunks"), SLOW_STREAM_CHUNKS))
            pieces = [f"chunk {index} " for index in range(1, max(count, 1) + 1)]
            events = demo.stream_events(endpoint, body, pieces=pieces)
            delay = _number(body.get("mock_delay"), SLOW_STREAM_DELAY_SECONDS)
            return await self._send_events(request, record, events, delay, headers)

        if self.script is not None and (call := self.script(endpoint, body)) is not None:
            body = _forcing(endpoint, body, call)
        if is_stream:
            events = demo.stream_events(endpoint, body)
            return await self._send_events(request, record, events, demo.STREAM_DELAY_SECONDS, headers)
        status, answer = demo.respond(endpoint, body)
        self.log.update(record, status=status)
        return _json_response(status, answer, headers)

    # -- faults and streams

    async def _send_events(
        self,
        request: web.Request,
        record: dict[str, Any],
        events: list[bytes],
        delay: float,
        headers: dict[str, str],
    ) -> web.StreamResponse:
        response = await self._start_stream(request, record, "text/event-stream; charset=utf-8", headers)
        for index, event in enumerate(events):
            if index and delay > 0:
                await asyncio.sleep(delay)
            self.log.add_chunk_time(record)  # before the write: a client never sees an unrecorded chunk
            await response.write(event)
        await response.write_eof()
        return response

    async def _start_stream(
        self,
        request: web.Request,
        record: dict[str, Any],
        content_type: str,
        headers: dict[str, str],
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            status=200,
            headers={
                **headers,
                "Content-Type": content_type,
                "Cache-Control": "no-cache",
            },
        )
        await response.prepare(request)
        self.log.update(record, status=200)
        return response

    def _huge(self, record: dict[str, Any], endpoint: str, body: dict, headers: dict[str, str]) -> web.Response:
        """A valid demo answer padded to ~20 MB with an extra ``mock_padding`` field."""
        status, answer = demo.respond(endpoint, {**body, "stream": False})
        encoded = json.dumps(answer).encode()
        padded = encoded[:-1] + b', "mock_padding": "' + b"x" * HUGE_BODY_BYTES + b'"}'
        self.log.update(record, status=status)
        return web.Response(status=status, body=padded, content_type="application/json", headers=headers)

    async def _stall(
        self,
        request: web.Request,
        record: dict[str, Any],
        endpoint: str,
        body: dict,
        is_stream: bool,
        headers: dict[str, str],
    ) -> web.StreamResponse:
        """Send headers and part of the body, then nothing until the client leaves."""
        if is_stream:
            response = await self._start_stream(request, record, "text/event-stream; charset=utf-8", headers)
            for event in demo.stream_events(endpoint, body)[:CHUNKS_BEFORE_FAULT]:
                self.log.add_chunk_time(record)
                await response.write(event)
        else:
            _, answer = demo.respond(endpoint, body)
            encoded = json.dumps(answer).encode()
            response = web.StreamResponse(status=200, headers={**headers, "Content-Type": "application/json"})
            response.content_length = len(encoded)
            await response.prepare(request)
            self.log.update(record, status=200)
            await response.write(encoded[: len(encoded) // 2])
        await self._wait_for_disconnect(request, record)
        return response

    async def _linger(
        self, request: web.Request, record: dict[str, Any], endpoint: str, body: dict, headers: dict[str, str]
    ) -> web.StreamResponse:
        """Send the whole stream, its last event included, then keep the response open (no end of
        the chunked body) until the client leaves: an upstream slow to close after its answer."""
        response = await self._start_stream(request, record, "text/event-stream; charset=utf-8", headers)
        for event in demo.stream_events(endpoint, body):
            self.log.add_chunk_time(record)
            await response.write(event)
        await self._wait_for_disconnect(request, record)
        return response

    async def _reset(
        self,
        request: web.Request,
        record: dict[str, Any],
        endpoint: str,
        body: dict,
        is_stream: bool,
        headers: dict[str, str],
    ) -> web.StreamResponse:
        """Abort the TCP connection: after two chunks of a stream, else at once."""
        response = web.StreamResponse()
        if is_stream:
            response = await self._start_stream(request, record, "text/event-stream; charset=utf-8", headers)
            for event in demo.stream_events(endpoint, body)[:CHUNKS_BEFORE_FAULT]:
                self.log.add_chunk_time(record)
                await response.write(event)
            # Let the chunks leave the socket buffer before the reset.
            await asyncio.sleep(_POLL_SECONDS)
        # Recorded first: whoever sees the reset finds it recorded.
        self.log.update(record, aborted=True)
        if request.transport is not None:
            request.transport.abort()
        # aiohttp has nothing left to write to; ending as cancelled keeps it quiet.
        raise asyncio.CancelledError

    async def _wait_for_disconnect(self, request: web.Request, record: dict[str, Any]) -> None:
        """Wait until the client disconnects (or the server stops), then record it."""
        while not self.closing.is_set():
            transport = request.transport
            if transport is None or transport.is_closing():
                self._mark_disconnected(record)
                return
            await asyncio.sleep(_POLL_SECONDS)

    def _mark_disconnected(self, record: dict[str, Any]) -> None:
        if (
            not record["disconnected"]
            and not record["completed"]
            and not record["aborted"]
            and not self.closing.is_set()
        ):
            self.log.update(record, disconnected=True, disconnected_at=time.time())


def _number(value: Any, default: float) -> float:
    is_number = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
    return float(value) if is_number else default


_UPSTREAM = web.AppKey("upstream", _Upstream)


def create_app(*, expect_key: str | None = None, log: RequestLog | None = None) -> web.Application:
    """The aiohttp application: the proxied ``/v1`` routes plus ``/_control``."""
    return _build_app(_Upstream(expect_key=expect_key, log=log or RequestLog()))


def _build_app(upstream: _Upstream) -> web.Application:
    # Gateways may forward large request bodies; aiohttp's default cap is 1 MiB.
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[_UPSTREAM] = upstream
    for endpoint in OPENAI_ENDPOINTS + ANTHROPIC_ENDPOINTS:
        app.router.add_post(f"/v1/{endpoint}", upstream.handle_api)
    app.router.add_get("/v1/models", upstream.handle_models)
    app.router.add_get("/_control/requests", upstream.handle_requests)
    app.router.add_post("/_control/reset", upstream.handle_reset)
    app.router.add_post("/_control/fault", upstream.handle_fault)
    app.router.add_route("*", "/v1/{tail:.*}", upstream.handle_api)
    return app


async def _start_runner(app: web.Application, port: int) -> tuple[web.AppRunner, int]:
    # handler_cancellation: a handler learns at once that its client went away.
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, HOST, port)
    await site.start()
    bound_port = runner.addresses[0][1]
    return runner, bound_port


async def _stop_runner(app: web.Application, runner: web.AppRunner) -> None:
    app[_UPSTREAM].closing.set()
    await runner.cleanup()


class UpstreamServer:
    """The fake upstream served from a background thread with its own event loop.

    Usable from synchronous tests::

        with UpstreamServer(expect_key="sk-upstream") as upstream:
            client = openai.OpenAI(base_url=upstream.url + "/v1", api_key="sk-upstream")
            ...
            headers = upstream.requests[-1]["headers"]
            assert headers["authorization"] == "Bearer sk-upstream"

    ``expect_key=None`` accepts any credential. ``stop()`` is idempotent.
    """

    def __init__(self, *, expect_key: str | None = None, port: int = 0) -> None:
        self._requested_port = port
        self._log = RequestLog()
        self._upstream = _Upstream(expect_key=expect_key, log=self._log)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._port: int | None = None
        self._startup_error: BaseException | None = None

    @property
    def expect_key(self) -> str | None:
        """The credential clients must send; ``None`` accepts any. Settable live."""
        return self._upstream.expect_key

    @expect_key.setter
    def expect_key(self, value: str | None) -> None:
        self._upstream.expect_key = value

    @property
    def script(self) -> Script | None:
        """The tool-call script (see the module docstring); ``None`` for the demo alone. Settable live."""
        return self._upstream.script

    @script.setter
    def script(self, value: Script | None) -> None:
        self._upstream.script = value

    @property
    def fault(self) -> str | None:
        """A fault model (:data:`FAULT_MODELS`) every request gets whatever it asks for; None:
        each request's own model decides. Settable live: an upstream going down and back."""
        return self._upstream.fault

    @fault.setter
    def fault(self, value: str | None) -> None:
        if value is not None and value not in FAULT_MODELS:
            raise ValueError(f"unknown fault {value!r}")
        self._upstream.fault = value

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("UpstreamServer is not started")
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` without a trailing slash or ``/v1``."""
        return f"http://{HOST}:{self.port}"

    @property
    def requests(self) -> list[dict[str, Any]]:
        """A copy of every request record so far (see :class:`RequestLog`)."""
        return self._log.snapshot()

    def reset(self) -> None:
        """Forget the recorded requests."""
        self._log.reset()

    def wait_for(self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 5.0) -> list[dict[str, Any]]:
        """Block until ``predicate(requests)`` holds (e.g. a stream disconnected)."""
        return self._log.wait_for(predicate, timeout)

    def start(self) -> Self:
        """Start serving; returns once the port is bound."""
        with self._lock:
            if self._thread is not None:
                return self
            ready = threading.Event()
            self._startup_error = None
            self._thread = threading.Thread(target=self._run, args=(ready,), name="upstream-server", daemon=True)
            self._thread.start()
        ready.wait()
        if self._startup_error is not None:
            self._thread.join()
            self._thread = None
            raise RuntimeError("UpstreamServer failed to start") from self._startup_error
        return self

    def stop(self) -> None:
        """Stop serving, close connections and join the thread. Safe to call twice."""
        with self._lock:
            thread, loop = self._thread, self._loop
            self._thread = None
        if thread is None or loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join()

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._upstream.closing = asyncio.Event()  # a fresh one for each start
        app = _build_app(self._upstream)
        try:
            runner, self._port = loop.run_until_complete(_start_runner(app, self._requested_port))
        except BaseException as error:  # reported to the starting thread, then re-raised there
            self._startup_error = error
            loop.close()
            ready.set()
            return
        self._loop = loop
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(_stop_runner(app, runner))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            self._loop = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


# -------------------------------------------------------------------------- CLI


async def _serve(port: int, portfile: Path | None, expect_key: str | None) -> None:
    app = create_app(expect_key=expect_key)
    runner, bound_port = await _start_runner(app, port)
    if portfile is not None:
        # Written atomically, so a waiting test never reads a half-written port.
        partial = portfile.with_name(portfile.name + ".tmp")
        partial.write_text(f"{bound_port}\n")
        os.replace(partial, portfile)
    print(f"mock upstream listening on http://{HOST}:{bound_port}", flush=True)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await stopping.wait()
    finally:
        await _stop_runner(app, runner)


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m tests.support.upstream --help``."""
    parser = argparse.ArgumentParser(description="Keygate's fake OpenAI/Anthropic upstream (binds 127.0.0.1).")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    parser.add_argument("--portfile", type=Path, help="write the bound port here once listening")
    parser.add_argument("--expect-key", help="the upstream credential to require (default: accept any)")
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.port, args.portfile, args.expect_key))


if __name__ == "__main__":
    main()

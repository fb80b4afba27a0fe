"""config/serve.py's response writer: a response's head leaves with its body in one call, a head
whose body is not ready yet leaves at the end of the event loop's turn, and bytes never change
order (issue #16). The live side is in test_serve_live.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import uvloop

from config.serve import _ResponseWriter

LOOPS = pytest.mark.parametrize("run", [asyncio.run, uvloop.run], ids=["asyncio", "uvloop"])

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


class RecordingTransport:
    """Records each call that would reach the socket: ("write", data) or ("writelines", parts)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.calls.append(("write", data))

    def writelines(self, parts: Any) -> None:
        self.calls.append(("writelines", tuple(parts)))

    def close(self) -> None:
        self.calls.append(("close", None))
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing


async def _turns(count: int = 2) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


def _writer() -> tuple[_ResponseWriter, RecordingTransport]:
    transport = RecordingTransport()
    writer = _ResponseWriter(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
    writer.hold = True  # as the protocol sets it for each new request
    return writer, transport


@LOOPS
def test_a_head_and_its_body_leave_in_one_call(run: Any) -> None:
    async def main() -> list[tuple[str, Any]]:
        writer, transport = _writer()
        writer.write(HEAD)
        assert transport.calls == []  # held until the body comes
        writer.write(b"ok")
        await _turns()  # the pending end-of-turn flush finds nothing left
        return transport.calls

    assert run(main()) == [("writelines", (HEAD, b"ok"))]


@LOOPS
def test_a_head_whose_body_is_not_ready_leaves_at_the_end_of_the_turn(run: Any) -> None:
    async def main() -> list[tuple[str, Any]]:
        writer, transport = _writer()
        writer.write(HEAD)  # a streamed answer: its first chunk comes later
        await _turns()
        assert transport.calls == [("write", HEAD)]
        writer.write(b"data: 1\n\n")
        writer.write(b"data: 2\n\n")
        return transport.calls

    assert run(main()) == [("write", HEAD), ("write", b"data: 1\n\n"), ("write", b"data: 2\n\n")]


@LOOPS
def test_only_the_first_write_of_a_request_is_held(run: Any) -> None:
    async def main() -> list[tuple[str, Any]]:
        writer, transport = _writer()
        writer.write(HEAD)
        writer.write(b"o")
        writer.write(b"k")  # no hold left: straight through, after the joined pair
        writer.hold = True  # the next request on the connection
        writer.write(HEAD)
        writer.write(b"ok")
        await _turns()
        return transport.calls

    assert run(main()) == [
        ("writelines", (HEAD, b"o")),
        ("write", b"k"),
        ("writelines", (HEAD, b"ok")),
    ]


@LOOPS
def test_closing_writes_what_is_held_first(run: Any) -> None:
    async def main() -> list[tuple[str, Any]]:
        writer, transport = _writer()
        writer.write(HEAD)
        writer.close()  # e.g. the app failed after starting its response
        await _turns()
        return transport.calls

    assert run(main()) == [("write", HEAD), ("close", None)]


@LOOPS
def test_nothing_held_is_written_to_a_connection_already_closing(run: Any) -> None:
    async def main() -> list[tuple[str, Any]]:
        writer, transport = _writer()
        writer.write(HEAD)
        transport.closing = True  # the client went away in the same turn
        await _turns()
        return transport.calls

    assert run(main()) == []

"""The access log writer (gateway.logfmt.AccessLog): one JSON line per call, time stamped."""

import io
from datetime import UTC, datetime

import orjson

from gateway import logfmt
from gateway.logfmt import AccessLog


def _lines(stream: io.StringIO) -> list[dict]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_each_line_has_its_fields_and_the_time_to_the_millisecond():
    stream = io.StringIO()
    log = AccessLog(stream=stream)
    now = datetime.now(UTC)
    before = now.replace(microsecond=now.microsecond // 1000 * 1000)  # a stamp is cut to the millisecond
    log.write(request_id="req_1", status=200)
    log.write(request_id="req_2", status=429)
    log.flush()
    after = datetime.now(UTC)
    first, second = _lines(stream)
    assert (first["request_id"], first["status"], second["request_id"], second["status"]) == (
        "req_1",
        200,
        "req_2",
        429,
    )
    for line in (first, second):
        assert len(line["time"]) == len("2026-12-03T08:03:50.731+00:00") and line["time"].endswith("+00:00")
        stamp = datetime.fromisoformat(line["time"])
        assert before <= stamp <= after


def test_the_time_moves_on_with_the_clock(monkeypatch):
    clock = [1_700_000_000_123_456_789]
    monkeypatch.setattr(logfmt.time, "time_ns", lambda: clock[0])
    stream = io.StringIO()
    log = AccessLog(stream=stream)
    log.write(n=1)
    clock[0] += 400_000  # 0.4 ms later: the same millisecond
    log.write(n=2)
    clock[0] += 1_000_000  # the next millisecond
    log.write(n=3)
    clock[0] += 2_000_000_000  # two seconds on
    log.write(n=4)
    log.flush()
    times = [line["time"] for line in _lines(stream)]
    assert times == [
        "2023-11-14T22:13:20.123+00:00",
        "2023-11-14T22:13:20.123+00:00",
        "2023-11-14T22:13:20.124+00:00",
        "2023-11-14T22:13:22.124+00:00",
    ]


def test_every_millisecond_across_second_minute_and_year_boundaries_reads_as_isoformat_would(monkeypatch):
    """The date and time are formatted once a second and the milliseconds added to them: every
    stamp must still be exactly what ``isoformat`` gives for that millisecond."""
    clock = [0]
    monkeypatch.setattr(logfmt.time, "time_ns", lambda: clock[0])
    log = AccessLog(stream=io.StringIO())
    starts = [
        1_700_000_000_000,
        1_767_225_599_000 - 1_500,
        1_704_067_199_998,
    ]  # any second; the last seconds of 2025 and of 2023
    checked = 0
    for start in starts:
        for ms in range(start, start + 2_500, 7):  # across 2–3 second boundaries, in steps that vary the ms
            clock[0] = ms * 1_000_000 + 999_999  # the end of that millisecond: never rounded up
            expected = datetime.fromtimestamp(ms // 1000, UTC).replace(microsecond=ms % 1000 * 1000)
            assert log._now() == expected.isoformat(timespec="milliseconds"), ms
            checked += 1
    assert checked > 1000

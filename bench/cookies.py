"""What an upstream's cookies cost the gateway (issue #16): aiohttp's default cookie jar against
the one Keygate uses (``aiohttp.DummyCookieJar``: nothing kept, nothing sent).

    .venv/bin/python bench/cookies.py [--rounds 8] [--requests 3000]

api.openai.com answers through Cloudflare, which sets ``__cf_bm`` and ``_cfuvid`` on its
answers. The nginx mock here does the same on every answer (two cookies of the same size), and
is called by host name (``localhost``): aiohttp's default jar ignores cookies from an IP address,
so the mock of ``bench/run.py`` (127.0.0.1, no cookies) cannot show this cost.

The real gateway app runs in this process (SQLite, as ``bench/stages.py`` sets it up) and drives
non-streamed requests one after another; each round measures both jars back to back (order
alternating), swapping the jar of the one client session in place. Prints the loop thread's CPU
per request for each and the median of the paired differences.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import shutil
import statistics
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import stages

#: Cloudflare-shaped cookies (their lengths, attributes without Secure: the mock is plain HTTP).
COOKIES = (
    f"__cf_bm={'a' * 43}-1765000000-1.0.1.1-{'b' * 86}; path=/; expires=Fri, 01-Jan-38 00:00:00 GMT; "
    "HttpOnly; SameSite=None",
    f"_cfuvid={'c' * 43}-1765000000000-0.0.1.1-604800000; path=/; HttpOnly; SameSite=None",
)


@contextlib.contextmanager
def cookie_mock(tmp: Path) -> Iterator[int]:
    """bench/mock_nginx.conf with the cookies added to every answer; yields its port."""
    conf = (stages.BENCH / "mock_nginx.conf").read_text()
    headers = "".join(f'        add_header Set-Cookie "{cookie}" always;\n' for cookie in COOKIES)
    marker = "        location = /v1/chat/completions {"
    assert marker in conf
    mock = tmp / "mock"
    mock.mkdir()
    (mock / "mock_nginx.conf").write_text(conf.replace(marker, headers + marker, 1))
    shutil.copy(stages.BENCH / "mock_nginx.sh", mock)  # it fills in the config beside it
    with stages.nginx_mock(tmp, mock / "mock_nginx.sh") as port:
        yield port


async def measure(key: str, rounds: int, requests: int) -> dict[str, list[float]]:
    import aiohttp

    from gateway.asgi import GatewayApp

    app = GatewayApp()
    await app.startup()
    session = app.forwarder.session
    assert isinstance(session._cookie_jar, aiohttp.DummyCookieJar)  # what Keygate ships
    jars = {"default CookieJar": aiohttp.CookieJar(), "DummyCookieJar (Keygate)": session._cookie_jar}
    scope = stages.make_scope("/v1/chat/completions", key)
    figures: dict[str, list[float]] = {name: [] for name in jars}
    try:
        for jar in jars.values():  # warm-up; the default jar fills
            session._cookie_jar = jar
            _, statuses = await stages.drive(app, scope, 300)
            assert set(statuses) == {200}, statuses[:5]
        kept = len(jars["default CookieJar"])
        assert kept == len(COOKIES), f"the default jar kept {kept} cookies"
        for number in range(rounds):
            order = list(jars.items()) if number % 2 == 0 else list(reversed(jars.items()))
            for name, jar in order:
                session._cookie_jar = jar
                us, _ = await stages.drive(app, scope, requests)
                figures[name].append(us)
    finally:
        await app.shutdown()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="keygate-cookies-"))
    with cookie_mock(tmp) as port:
        key = stages.setup_django(tmp, port)
        os.environ["OPENAI_BASE_URL"] = f"http://localhost:{port}/v1"  # by host name: see above
        import uvloop

        gc.collect()
        gc.freeze()
        with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):  # the access log
            figures = uvloop.run(measure(key, args.rounds, args.requests))
    print(
        f"Upstream cookies ({len(COOKIES)} set on every answer), loop-thread CPU per request, {args.rounds} paired rounds:"
    )
    for name, values in figures.items():
        print(
            f"  {name:26s} median {statistics.median(values):6.1f} µs   rounds {', '.join(f'{v:.0f}' for v in values)}"
        )
    names = list(figures)
    differences = [a - b for a, b in zip(figures[names[0]], figures[names[1]], strict=True)]
    print(
        f"  difference (paired median) {statistics.median(differences):+6.1f} µs   rounds {', '.join(f'{d:+.0f}' for d in differences)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

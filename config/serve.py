"""Serve Keygate with uvicorn: `python -m config.serve` (what `make run` does).

Reads HOST (default 127.0.0.1), PORT (8000) and WORKERS (1) from the environment or `.env`.
"""

from __future__ import annotations

from pathlib import Path

import environ
import uvicorn

BASE_DIR = Path(__file__).resolve().parent.parent


def main() -> None:
    env = environ.Env()
    env_file = BASE_DIR / ".env"
    if env_file.is_file():
        environ.Env.read_env(env_file, overwrite=False)
    host = env.str("HOST", default="127.0.0.1")
    port = env.int("PORT", default=8000)
    workers = env.int("WORKERS", default=1)
    print(f"Keygate listening on http://{host}:{port} ({workers} worker{'s' if workers != 1 else ''})", flush=True)
    uvicorn.run(
        "config.asgi:application",
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        proxy_headers=env.bool("PROXY_HEADERS", default=False),
        forwarded_allow_ips=env.str("FORWARDED_ALLOW_IPS", default="127.0.0.1"),
        timeout_graceful_shutdown=env.int("GRACEFUL_TIMEOUT", default=10),
        log_level=env.str("LOG_LEVEL", default="info").lower(),
    )


if __name__ == "__main__":
    main()

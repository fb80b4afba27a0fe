"""Write a `.env` with fresh random secrets if there is none (used by `make run`).

Never overwrites an existing file; prints only the path, never the secrets.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

TEMPLATE = """\
# Written by `make run` on first start. Keep it private; never commit it.
# See .env.example for every setting.
SECRET_KEY={secret_key}
KEYGATE_PEPPER={pepper}
DEBUG=false
ALLOWED_HOSTS=127.0.0.1,localhost,[::1]
"""


def main() -> int:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else ".env")
    if path.exists():
        return 0
    path.write_text(TEMPLATE.format(secret_key=secrets.token_urlsafe(50), pepper=secrets.token_urlsafe(32)))
    path.chmod(0o600)
    print(f"Created {path} with fresh random SECRET_KEY and KEYGATE_PEPPER.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Keygate key format, checksum and hashing. Pure code: no ORM, no settings import.

A Keygate key reads ``{prefix}-{public_id}{secret}{checksum}``, e.g. with the default
prefix ``sk-kg``::

    sk-kg-AbCdEfGh1234 <32-char secret> Xy12Ab
          `-- 12 --'  `----- 32 -----'  `-6-'

- ``public_id``: 12 base62 characters (~71 bits), unique per key, stored in clear and used to
  look the key up. It identifies a key; it grants nothing.
- ``secret``: 32 base62 characters from :mod:`secrets` (~190 bits). Never stored.
- ``checksum``: CRC32 of everything before it (prefix, dash, public id, secret) as 6 base62
  characters, zero-padded. CRC32 detects every error confined to 32 bits, so any single
  mistyped character fails it, and a secret scanner or log redactor can recognise a Keygate
  key offline with :data:`KEY_BODY_RE` plus :func:`checksum`.

One alphabet and fixed lengths mean a malformed key is rejected before any I/O.

Stored form: an argon2id hash (PHC string) of the *whole* key. Because the key carries
~190 bits of entropy, the hash does not need to be slow to resist guessing (nobody can
enumerate 2^190 candidates); it protects a leaked database, and its cost is paid once per key
per process thanks to the gateway's verified-key cache. We therefore use OWASP's
recommended minimum for argon2id (m = 19 MiB, t = 2, p = 1), not the 64 MiB default meant
for low-entropy passwords: about a quarter of the time and memory per cold verify.
See https://cheatsheetseries.owasp.org/cheatsheets/Password_Storage_Cheat_Sheet.html#argon2id
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
PUBLIC_ID_LENGTH = 12
SECRET_LENGTH = 32
CHECKSUM_LENGTH = 6
BODY_LENGTH = PUBLIC_ID_LENGTH + SECRET_LENGTH + CHECKSUM_LENGTH

PREFIX_RE = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
KEY_BODY_RE = re.compile(
    rf"(?P<public_id>[0-9A-Za-z]{{{PUBLIC_ID_LENGTH}}})"
    rf"(?P<secret>[0-9A-Za-z]{{{SECRET_LENGTH}}})"
    rf"(?P<checksum>[0-9A-Za-z]{{{CHECKSUM_LENGTH}}})"
)
PUBLIC_ID_RE = re.compile(rf"^[0-9A-Za-z]{{{PUBLIC_ID_LENGTH}}}$")

# OWASP minimum for argon2id; see the module docstring for why this suffices for random keys.
ARGON2_TIME_COST = 2
ARGON2_MEMORY_COST_KIB = 19 * 1024
ARGON2_PARALLELISM = 1


@dataclass(frozen=True, slots=True)
class ParsedKey:
    """The parts of a well-formed key whose checksum matched."""

    prefix: str
    public_id: str
    raw: str


def _random_base62(length: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def _base62(number: int, width: int) -> str:
    digits = []
    while number:
        number, rest = divmod(number, 62)
        digits.append(ALPHABET[rest])
    return "".join(reversed(digits)).rjust(width, ALPHABET[0])


def checksum(text: str) -> str:
    """The 6-character base62 CRC32 of ``text``."""
    return _base62(zlib.crc32(text.encode("ascii")), CHECKSUM_LENGTH)


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` if usable (lowercase words joined by dashes), else raise ValueError."""
    if not PREFIX_RE.match(prefix) or len(prefix) > 16:
        raise ValueError(f"invalid key prefix {prefix!r}: use 1-16 lowercase letters, digits and dashes, e.g. 'sk-kg'")
    return prefix


def generate_key(prefix: str) -> tuple[str, str]:
    """Create a new key. Returns ``(public_id, full_key)``; the full key must be shown once."""
    validate_prefix(prefix)
    public_id = _random_base62(PUBLIC_ID_LENGTH)
    head = f"{prefix}-{public_id}{_random_base62(SECRET_LENGTH)}"
    return public_id, head + checksum(head)


def parse_key(raw: str, prefix: str) -> ParsedKey | None:
    """Parse ``raw`` as a key with ``prefix``; ``None`` unless format and checksum both hold.

    Constant work, no I/O: this is what keeps garbage away from the database and argon2.
    """
    if not isinstance(raw, str) or len(raw) != len(prefix) + 1 + BODY_LENGTH:
        return None
    if not raw.startswith(prefix) or raw[len(prefix)] != "-":
        return None
    match = KEY_BODY_RE.fullmatch(raw, len(prefix) + 1)
    if match is None:
        return None
    if not hmac.compare_digest(match["checksum"], checksum(raw[:-CHECKSUM_LENGTH])):
        return None
    return ParsedKey(prefix=prefix, public_id=match["public_id"], raw=raw)


@lru_cache(maxsize=8)
def _key_shape(prefix: str) -> re.Pattern[str]:
    return re.compile(rf"({re.escape(prefix)}-[0-9A-Za-z]{{{PUBLIC_ID_LENGTH}}})[0-9A-Za-z]{{8,}}")


def key_regex(prefix: str) -> str:
    """The portable regular expression for a whole key with ``prefix`` (RE2, PCRE and Python
    agree on it): what SECURITY.md documents and the gitleaks/trufflehog rules use. It finds
    the shape; the checksum (:func:`parse_key`) then tells a key from a look-alike. A valid
    prefix holds only lowercase letters, digits and dashes, none of which needs escaping."""
    return rf"\b{validate_prefix(prefix)}-[0-9A-Za-z]{{{BODY_LENGTH}}}\b"


@lru_cache(maxsize=8)
def _key_in_bytes(prefix: str) -> re.Pattern[bytes]:
    # Not touching another letter or digit on either side. Stricter than \b about letters and
    # digits, looser about "_" (API_KEY_sk-kg-… is found): the checksum rules out look-alikes.
    return re.compile(
        rf"(?<![0-9A-Za-z]){re.escape(prefix)}-[0-9A-Za-z]{{{BODY_LENGTH}}}(?![0-9A-Za-z])".encode("ascii")
    )


def find_keys(data: str | bytes, prefix: str) -> Iterator[tuple[int, ParsedKey]]:
    """Every Keygate key with ``prefix`` in ``data``: ``(byte offset, parsed key)`` in order.

    Prefix, shape and checksum must all hold, so a look-alike (a mistyped or forged-looking
    string, another product's token) is never reported. Pure and offline: no database, no
    argon2 — whether a found key is *live* is :mod:`keys.leaks`'s question. Bytes are
    scanned as they are (files of any encoding, or binary); text is scanned as ASCII.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    head = prefix.encode("ascii") + b"-"
    if head not in raw:  # the common case in a scanned tree: one C-speed substring search
        return
    for match in _key_in_bytes(prefix).finditer(raw):
        parsed = parse_key(match.group().decode("ascii"), prefix)
        if parsed is not None:
            yield match.start(), parsed


def redact(text: str, prefix: str) -> str:
    """``text`` with anything shaped like a key (prefix, public id, 8+ more key characters)
    masked after its public id: for echoing client input (a model name) or logging it."""
    return _key_shape(prefix).sub(r"\1…[redacted]", text) if prefix in text else text


def mask(prefix: str, public_id: str, last4: str) -> str:
    """The displayable form of a key: its public id and last four characters, never the secret."""
    return f"{prefix}-{public_id}…{last4}"


def make_hasher(
    *,
    time_cost: int = ARGON2_TIME_COST,
    memory_cost_kib: int = ARGON2_MEMORY_COST_KIB,
    parallelism: int = ARGON2_PARALLELISM,
) -> PasswordHasher:
    """An argon2id hasher; tests pass a cheaper setting."""
    return PasswordHasher(
        time_cost=time_cost,
        memory_cost=memory_cost_kib,
        parallelism=parallelism,
        hash_len=32,
        salt_len=16,
        type=Type.ID,
    )


def hash_key(hasher: PasswordHasher, raw: str) -> str:
    """The argon2id PHC string stored for ``raw``."""
    return hasher.hash(raw)


def verify_key_hash(hasher: PasswordHasher, stored_hash: str, raw: str) -> bool:
    """True when ``raw`` matches ``stored_hash``. Costs one argon2 computation."""
    try:
        return hasher.verify(stored_hash, raw)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def digest(pepper: bytes, raw: str) -> bytes:
    """HMAC-SHA256 of a raw key under the pepper: the in-memory cache's lookup key.

    Never persisted or logged; without the pepper it cannot be tested against guesses.

    A copy of an HMAC already keyed with the pepper, not ``hmac.digest``: that one-shot releases
    the GIL around OpenSSL whatever the length, so on every request the event loop handed the
    GIL to any thread that wanted it (the usage writer, a dashboard view served in the same
    process, the Python side of an argon2 verify) and waited up to a switch interval (5 ms) to
    get it back. The copy keeps it, and skips the key setup:
    0.9 µs instead of 1.4 (issue #16).
    """
    mac = _keyed(pepper).copy()
    mac.update(raw.encode("utf-8", "surrogatepass"))
    return mac.digest()


@lru_cache(maxsize=4)  # one pepper per process (tests use a few)
def _keyed(pepper: bytes) -> hmac.HMAC:
    return hmac.new(pepper, digestmod=hashlib.sha256)


__all__ = [
    "ALPHABET",
    "KEY_BODY_RE",
    "ParsedKey",
    "checksum",
    "digest",
    "find_keys",
    "generate_key",
    "hash_key",
    "key_regex",
    "make_hasher",
    "mask",
    "parse_key",
    "redact",
    "validate_prefix",
    "verify_key_hash",
]

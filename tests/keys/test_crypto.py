"""The key format, checksum and hashing (keys/crypto.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import sys
import threading
import time

import pytest

from keys import crypto

PREFIX = "sk-kg"


def test_generated_key_has_the_documented_format() -> None:
    public_id, raw = crypto.generate_key(PREFIX)
    assert raw.startswith(f"{PREFIX}-{public_id}")
    body = raw[len(PREFIX) + 1 :]
    assert len(body) == 12 + 32 + 6
    assert crypto.KEY_BODY_RE.match(body)
    assert raw[-6:] == crypto.checksum(raw[:-6])


def test_parse_accepts_a_generated_key_and_returns_its_public_id() -> None:
    public_id, raw = crypto.generate_key(PREFIX)
    parsed = crypto.parse_key(raw, PREFIX)
    assert parsed is not None and parsed.public_id == public_id


def test_every_single_character_typo_fails_the_checksum() -> None:
    _, raw = crypto.generate_key(PREFIX)
    start = len(PREFIX) + 1
    for position in range(start, len(raw)):
        for replacement in crypto.ALPHABET:
            if replacement == raw[position]:
                continue
            typo = raw[:position] + replacement + raw[position + 1 :]
            assert crypto.parse_key(typo, PREFIX) is None, (position, replacement)


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda k: k[:-1], id="one-character-short"),
        pytest.param(lambda k: k + "A", id="one-character-long"),
        pytest.param(lambda k: k.replace("sk-kg-", "sk-xx-"), id="another-prefix"),
        pytest.param(lambda k: k.replace("sk-kg-", "sk-kg_"), id="wrong-separator"),
        pytest.param(lambda k: k[:20] + "!" + k[21:], id="character-outside-alphabet"),
        pytest.param(lambda k: " " + k, id="leading-space"),
        pytest.param(lambda k: k.upper(), id="upper-cased"),
        pytest.param(lambda k: "", id="empty"),
        pytest.param(lambda k: "' OR '1'='1", id="sql-injection"),
    ],
)
def test_malformed_keys_are_rejected_offline(mangle) -> None:
    _, raw = crypto.generate_key(PREFIX)
    assert crypto.parse_key(mangle(raw), PREFIX) is None


def test_parse_rejects_non_strings() -> None:
    assert crypto.parse_key(None, PREFIX) is None  # type: ignore[arg-type]
    assert crypto.parse_key(b"sk-kg-abc", PREFIX) is None  # type: ignore[arg-type]


def test_the_secret_comes_from_the_secrets_module(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real_choice = secrets.choice

    def spy(seq):
        calls.append(1)
        return real_choice(seq)

    monkeypatch.setattr(crypto.secrets, "choice", spy)
    crypto.generate_key(PREFIX)
    assert len(calls) == 12 + 32


def test_keys_are_unique_across_many_generations() -> None:
    keys = {crypto.generate_key(PREFIX)[1] for _ in range(2000)}
    assert len(keys) == 2000


def test_custom_prefix_is_supported_and_validated() -> None:
    _, raw = crypto.generate_key("acme-llm")
    assert crypto.parse_key(raw, "acme-llm") is not None
    assert crypto.parse_key(raw, "sk-kg") is None
    with pytest.raises(ValueError):
        crypto.generate_key("Bad Prefix")


def test_hash_verifies_the_key_and_nothing_else() -> None:
    hasher = crypto.make_hasher(time_cost=1, memory_cost_kib=64)
    _, raw = crypto.generate_key(PREFIX)
    _, other = crypto.generate_key(PREFIX)
    stored = crypto.hash_key(hasher, raw)
    assert stored.startswith("$argon2id$")
    assert raw not in stored
    assert crypto.verify_key_hash(hasher, stored, raw)
    assert not crypto.verify_key_hash(hasher, stored, other)
    assert not crypto.verify_key_hash(hasher, "not-a-hash", raw)


def test_real_parameters_are_argon2id_owasp_minimum_and_cost_what_the_docs_say() -> None:
    hasher = crypto.make_hasher()
    _, raw = crypto.generate_key(PREFIX)
    stored = crypto.hash_key(hasher, raw)
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    started = time.perf_counter()
    assert crypto.verify_key_hash(hasher, stored, raw)
    # Not a benchmark (see bench/): only a guard that nobody swapped in a trivial setting.
    assert time.perf_counter() - started > 0.002


def test_digest_depends_on_the_pepper() -> None:
    _, raw = crypto.generate_key(PREFIX)
    assert crypto.digest(b"pepper-1", raw) != crypto.digest(b"pepper-2", raw)
    assert crypto.digest(b"pepper-1", raw) == crypto.digest(b"pepper-1", raw)


def test_mask_shows_public_id_and_last_four_only() -> None:
    public_id, raw = crypto.generate_key(PREFIX)
    masked = crypto.mask(PREFIX, public_id, raw[-4:])
    assert masked == f"{PREFIX}-{public_id}…{raw[-4:]}"
    assert raw[len(PREFIX) + 13 : -6] not in masked


# A fixed key with its known checksum (a golden vector): CRC32 of the head is 886,067,957, which is
# five base62 digits ("xxqkf"), so the checksum is zero-padded on the left to "0xxqkf".
GOLDEN_HEAD = "sk-kg-AbCdEfGh12340123456789abcdefghijklmnopqrstu0"
GOLDEN_KEY = GOLDEN_HEAD + "0xxqkf"


def test_the_checksum_of_a_fixed_key_is_its_crc32_in_base62_padded_on_the_left() -> None:
    assert crypto.checksum(GOLDEN_HEAD) == "0xxqkf"
    assert crypto.checksum("sk-kg-AbCdEfGh12340123456789abcdefghijklmnopqrstuv") == "38eLXU"
    assert crypto.checksum("") == "000000"


def test_a_fixed_key_parses_to_its_parts() -> None:
    assert crypto.parse_key(GOLDEN_KEY, PREFIX) == crypto.ParsedKey(
        prefix=PREFIX, public_id="AbCdEfGh1234", raw=GOLDEN_KEY
    )


def test_a_key_with_a_valid_checksum_but_another_prefix_is_rejected() -> None:
    head = "sk-xx-" + GOLDEN_HEAD[len("sk-kg-") :]
    assert crypto.parse_key(head + crypto.checksum(head), PREFIX) is None


def test_a_key_with_a_valid_checksum_but_another_separator_is_rejected() -> None:
    head = "sk-kg_" + GOLDEN_HEAD[len("sk-kg-") :]
    assert crypto.parse_key(head + crypto.checksum(head), PREFIX) is None


@pytest.mark.parametrize(
    ("prefix", "valid"),
    [
        pytest.param("a" * 16, True, id="sixteen-characters"),
        pytest.param("a" * 17, False, id="seventeen-characters"),
        pytest.param("a", True, id="one-letter"),
        pytest.param("sk-kg-2", True, id="words-joined-by-dashes"),
        pytest.param("sk--kg", False, id="double-dash"),
        pytest.param("-sk", False, id="leading-dash"),
        pytest.param("1sk", False, id="leading-digit"),
    ],
)
def test_a_prefix_is_one_to_sixteen_lowercase_words_joined_by_dashes(prefix, valid) -> None:
    if valid:
        assert crypto.validate_prefix(prefix) == prefix
    else:
        with pytest.raises(ValueError, match=r"invalid key prefix .*: use 1-16 lowercase letters"):
            crypto.validate_prefix(prefix)


def test_redact_masks_a_key_after_its_public_id() -> None:
    assert crypto.redact(f"model {GOLDEN_KEY} end", PREFIX) == "model sk-kg-AbCdEfGh1234…[redacted] end"


def test_redact_masks_every_key_shaped_string_in_the_text() -> None:
    assert (
        crypto.redact(f"{GOLDEN_KEY},{GOLDEN_KEY}", PREFIX)
        == "sk-kg-AbCdEfGh1234…[redacted],sk-kg-AbCdEfGh1234…[redacted]"
    )


def test_redact_masks_a_truncated_key_of_public_id_and_eight_more_characters() -> None:
    assert crypto.redact("sk-kg-AbCdEfGh1234abcdefgh", PREFIX) == "sk-kg-AbCdEfGh1234…[redacted]"
    assert crypto.redact("sk-kg-AbCdEfGh1234abcdefg", PREFIX) == "sk-kg-AbCdEfGh1234abcdefg"


def test_redact_leaves_text_without_the_prefix_alone() -> None:
    assert crypto.redact("gpt-4o", PREFIX) == "gpt-4o"
    assert crypto.redact(GOLDEN_KEY, "acme") == GOLDEN_KEY


def test_redact_uses_the_prefix_it_is_given() -> None:
    key = "acme-AbCdEfGh1234" + "x" * 38
    assert crypto.redact(key, "acme") == "acme-AbCdEfGh1234…[redacted]"


def test_the_digest_of_a_fixed_key_is_its_hmac_sha256() -> None:
    expected = "2e1cab54cb885eef6313045f42105efdd12731151c5d970bb24ed3616548c02a"
    assert crypto.digest(b"pepper", GOLDEN_KEY).hex() == expected
    assert hmac.new(b"pepper", GOLDEN_KEY.encode(), hashlib.sha256).hexdigest() == expected


def test_the_digest_accepts_any_header_text_even_a_lone_surrogate() -> None:
    # A raw key comes from a request header; nothing a client sends may make the lookup raise.
    expected = hmac.new(b"pepper", "\ud800".encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
    assert crypto.digest(b"pepper", "\ud800") == expected


def test_the_stored_hash_has_a_16_byte_salt_and_a_32_byte_digest() -> None:
    stored = crypto.hash_key(crypto.make_hasher(time_cost=1, memory_cost_kib=64), GOLDEN_KEY)
    algorithm, version, parameters, salt, digest = stored.split("$")[1:]
    assert (algorithm, version, parameters) == ("argon2id", "v=19", "m=64,t=1,p=1")
    assert len(base64.b64decode(salt + "==")) == 16
    assert len(base64.b64decode(digest + "==")) == 32


def test_the_digest_keeps_the_gil_so_the_event_loop_does_not_wait_for_other_threads() -> None:
    """Computed on the event loop for every request: were it to release the GIL (as the
    ``hmac.digest`` one-shot does), a busy thread would take it, and each call would wait a whole
    switch interval to get it back (here 50 ms: 20 calls → about a second; kept, well under)."""
    stop = threading.Event()

    def busy() -> None:
        while not stop.is_set():
            pass

    interval = sys.getswitchinterval()
    thread = threading.Thread(target=busy, daemon=True)
    sys.setswitchinterval(0.05)
    thread.start()
    try:
        started = time.perf_counter()
        for _ in range(20):
            crypto.digest(b"pepper", GOLDEN_KEY)
        elapsed = time.perf_counter() - started
    finally:
        stop.set()
        sys.setswitchinterval(interval)
        thread.join()
    assert elapsed < 0.4

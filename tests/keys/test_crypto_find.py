"""keys.crypto.find_keys and key_regex: recognising Keygate keys in any text, offline."""

from __future__ import annotations

import re

import pytest

from keys import crypto


def _key(prefix: str = "sk-kg") -> str:
    return crypto.generate_key(prefix)[1]


def test_a_key_anywhere_in_text_is_found_with_its_offset() -> None:
    key = _key()
    text = f'OPENAI_API_KEY="{key}"\n'
    assert [(offset, found.raw) for offset, found in crypto.find_keys(text, "sk-kg")] == [(16, key)]


def test_keys_in_bytes_are_found_as_in_text() -> None:
    keys = [_key(), _key()]
    data = b"\x00\xffbinary " + keys[0].encode() + b"," + keys[1].encode() + b"\n"
    assert [found.raw for _, found in crypto.find_keys(data, "sk-kg")] == keys


def test_a_key_next_to_underscores_and_punctuation_is_found() -> None:
    key = _key()
    for text in (f"API_KEY_{key}", f"({key})", f"'{key}'", f"-H 'Authorization: Bearer {key}'", f"x={key}."):
        assert [found.raw for _, found in crypto.find_keys(text, "sk-kg")] == [key], text


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda k: k[:-1] + ("A" if k[-1] != "A" else "B"), id="one-character-typo"),
        pytest.param(lambda k: k[:-1], id="truncated"),
        pytest.param(lambda k: k + "x", id="longer-run"),
        pytest.param(lambda k: "x" + k, id="glued-to-a-letter-before"),
        pytest.param(lambda k: k.replace("sk-kg-", "sk-xx-"), id="other-prefix"),
    ],
)
def test_look_alikes_are_never_reported(mangle) -> None:
    assert list(crypto.find_keys(mangle(_key()), "sk-kg")) == []


def test_a_checksum_valid_key_of_another_prefix_is_not_found_under_ours() -> None:
    assert list(crypto.find_keys(_key("sk-acme"), "sk-kg")) == []
    assert len(list(crypto.find_keys(_key("sk-acme"), "sk-acme"))) == 1


def test_the_documented_regex_matches_every_generated_key_and_the_checksum_rejects_look_alikes() -> None:
    pattern = re.compile(crypto.key_regex("sk-kg"))
    assert pattern.pattern == r"\bsk-kg-[0-9A-Za-z]{50}\b"
    for _ in range(200):
        key = _key()
        assert pattern.fullmatch(key)
    look_alike = "sk-kg-" + "A" * 50
    assert pattern.fullmatch(look_alike) and crypto.parse_key(look_alike, "sk-kg") is None


def test_text_that_is_not_valid_unicode_is_still_scanned() -> None:
    # A file decoded with errors="surrogateescape" keeps its undecodable bytes as lone surrogates.
    key = _key()
    text = f"\udcff\udcfe garbage, then {key}\n"

    assert [found.raw for _, found in crypto.find_keys(text, "sk-kg")] == [key]

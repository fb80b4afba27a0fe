"""contrib/scanners: the gitleaks rule and the TruffleHog detector match Keygate keys.

Neither tool is installable here: no Debian package of either; on PyPI no gitleaks, and
``trufflehog`` is the 2021 Python v2, which has no v3 custom detectors; the npm packages of those
names are unrelated projects. So these tests check the rule files themselves — their regex is
exactly :func:`keys.crypto.key_regex` (RE2, which both tools use, reads it as Python does: ASCII
classes and ``\\b``), their keywords gate every key, and the regex finds every key in a fixture.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

from keys import crypto

SCANNERS = Path(__file__).resolve().parents[2] / "contrib" / "scanners"


def _gitleaks_rule() -> dict:
    config = tomllib.loads((SCANNERS / "gitleaks.toml").read_text())
    (rule,) = [rule for rule in config["rules"] if rule["id"] == "keygate-api-key"]
    return rule


def _trufflehog_detector() -> dict:
    (detector,) = yaml.safe_load((SCANNERS / "trufflehog.yaml").read_text())["detectors"]
    return detector


def _fixture() -> tuple[str, list[str]]:
    keys = [crypto.generate_key("sk-kg")[1] for _ in range(20)]
    lines = [f'key{i} = "{key}"' if i % 2 else f"export KEY={key}" for i, key in enumerate(keys)]
    lines += ["sk-kg-short", f"xsk-kg-{'A' * 50}", f"sk-kg-{'A' * 51}", "ghp_" + "a" * 36, "nothing"]
    return "\n".join(lines), keys


def test_the_gitleaks_rule_is_the_documented_regex() -> None:
    rule = _gitleaks_rule()
    assert rule["regex"] == crypto.key_regex("sk-kg")
    assert rule["keywords"] == ["sk-kg-"]


def test_the_trufflehog_detector_is_the_documented_regex() -> None:
    detector = _trufflehog_detector()
    assert detector["regex"] == {"key": crypto.key_regex("sk-kg")}
    assert detector["keywords"] == ["sk-kg-"]


def test_both_rules_find_exactly_the_keys_in_a_fixture() -> None:
    text, keys = _fixture()
    for regex, keywords in (
        (_gitleaks_rule()["regex"], _gitleaks_rule()["keywords"]),
        (_trufflehog_detector()["regex"]["key"], _trufflehog_detector()["keywords"]),
    ):
        assert re.findall(regex, text) == keys
        assert all(any(word in key for word in keywords) for key in keys)


def test_the_regex_is_re2_safe() -> None:
    """No look-around or back-references, which Go's RE2 (gitleaks, TruffleHog) refuses."""
    regex = crypto.key_regex("sk-kg")
    assert not re.search(r"\(\?[=!<]|\\[1-9]", regex)

"""The strict environment readers (config/env.py): a bad value is a configuration error naming
the variable, never a silent default or a truthy string."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_choice, env_float, env_int, env_list, env_str

NAME = "KEYGATE_TEST_SETTING"


@pytest.mark.parametrize(
    ("raw", "value"),
    [("true", True), ("1", True), ("YES", True), ("on", True), ("false", False), ("0", False), ("No", False)],
)
def test_a_boolean_is_read_strictly(monkeypatch, raw: str, value: bool) -> None:
    monkeypatch.setenv(NAME, raw)
    assert env_bool(NAME, default=not value) is value


@pytest.mark.parametrize("raw", ["maybe", "ture", "2", "enabled"])
def test_a_boolean_that_is_not_one_stops_start_up(monkeypatch, raw: str) -> None:
    monkeypatch.setenv(NAME, raw)
    with pytest.raises(ImproperlyConfigured, match=NAME):
        env_bool(NAME, default=False)


def test_unset_or_empty_means_the_default(monkeypatch) -> None:
    monkeypatch.delenv(NAME, raising=False)
    assert (env_bool(NAME, True), env_int(NAME, 7), env_float(NAME, 1.5), env_str(NAME, "d")) == (True, 7, 1.5, "d")
    monkeypatch.setenv(NAME, "")
    assert (env_bool(NAME, False), env_int(NAME, 7), env_list(NAME, ["a"]), env_choice(NAME, "x", ("x",))) == (
        False,
        7,
        ["a"],
        "x",
    )


@pytest.mark.parametrize(
    ("reader", "raw"),
    [
        pytest.param(lambda: env_int(NAME, 1), "ten", id="int-text"),
        pytest.param(lambda: env_int(NAME, 1), "1.5", id="int-fraction"),
        pytest.param(lambda: env_int(NAME, 1, minimum=1), "0", id="int-below-minimum"),
        pytest.param(lambda: env_int(NAME, 1), "-5", id="int-negative"),
        pytest.param(lambda: env_float(NAME, 1.0), "soon", id="float-text"),
        pytest.param(lambda: env_float(NAME, 1.0), "nan", id="float-nan"),
        pytest.param(lambda: env_float(NAME, 1.0), "inf", id="float-inf"),
        pytest.param(lambda: env_float(NAME, 1.0), "-1", id="float-negative"),
        pytest.param(lambda: env_choice(NAME, "INFO", ("INFO", "DEBUG")), "LOUD", id="choice"),
    ],
)
def test_a_number_or_choice_that_is_not_one_stops_start_up(monkeypatch, reader, raw: str) -> None:
    monkeypatch.setenv(NAME, raw)
    with pytest.raises(ImproperlyConfigured, match=NAME):
        reader()


def test_values_are_taken_as_written_without_interpolation(monkeypatch) -> None:
    monkeypatch.setenv("KEYGATE_TEST_OTHER", "other-value")
    monkeypatch.setenv(NAME, "$KEYGATE_TEST_OTHER")
    assert env_str(NAME) == "$KEYGATE_TEST_OTHER"


def test_lists_are_comma_separated_and_trimmed(monkeypatch) -> None:
    monkeypatch.setenv(NAME, " a, b ,,c ")
    assert env_list(NAME, []) == ["a", "b", "c"]
    monkeypatch.setenv(NAME, "debug")
    assert env_choice(NAME, "INFO", ("INFO", "DEBUG")) == "DEBUG"

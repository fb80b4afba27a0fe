"""config/logs.py: no log line carries a key, whoever logs it and wherever in the line it is."""

from __future__ import annotations

import logging
import sys

from django.conf import settings

from config.logs import key_redactor, logging_config, without_traceback

KEY = "sk-kg-AbCdEfGh1234" + "s3cr3tPartOfTheKey0123456789abcd"
PUBLIC = "sk-kg-AbCdEfGh1234"


def _record(msg: str, *args: object, exc_info: object = None) -> logging.LogRecord:
    return logging.LogRecord("django.request", logging.WARNING, __file__, 1, msg, args, exc_info)


def _raised(text: str) -> object:
    try:
        raise ValueError(text)
    except ValueError:
        return sys.exc_info()


def test_a_key_in_a_message_is_masked_after_its_public_id() -> None:
    record = _record("Not Found: /keys/%s", KEY)

    assert key_redactor("sk-kg")(record) is True  # the line is kept
    assert record.getMessage() == f"Not Found: /keys/{PUBLIC}…[redacted]"


def test_a_key_in_a_stack_trace_is_masked_and_the_trace_goes_into_the_message() -> None:
    record = _record("unexpected error", exc_info=_raised(f"bad key {KEY}"))

    key_redactor("sk-kg")(record)

    assert KEY not in record.getMessage()
    assert record.exc_info is None and record.exc_text is None  # nothing left to format the key from
    assert "ValueError: bad key sk-kg-AbCdEfGh1234…[redacted]" in record.getMessage()


def test_a_line_without_a_key_is_left_as_it_was() -> None:
    error = _raised("no key here")
    record = _record("served %s", "/v1/models", exc_info=error)

    key_redactor("sk-kg")(record)

    assert (record.msg, record.args, record.exc_info) == ("served %s", ("/v1/models",), error)


def test_the_configured_prefix_is_the_one_masked() -> None:
    record = _record("key acme-AbCdEfGh1234abcdefgh12")

    key_redactor("acme")(record)

    assert record.getMessage() == "key acme-AbCdEfGh1234…[redacted]"


def test_every_handler_of_the_settings_masks_keys() -> None:
    config = settings.LOGGING
    redact = config["filters"]["redact_keys"]["()"]()
    record = _record("Not Found: /keys/%s", KEY)
    redact(record)

    assert KEY not in record.getMessage()
    assert all("redact_keys" in handler["filters"] for handler in config["handlers"].values())


def test_refused_requests_lose_their_trace_and_the_template_engine_never_logs_below_info() -> None:
    config = logging_config(level="DEBUG", access_level="INFO", log_format="plain", key_prefix="sk-kg")
    record = _record("Invalid HTTP_HOST header", exc_info=_raised("DisallowedHost"))

    assert without_traceback(record) is True
    assert record.exc_info is None
    assert config["loggers"]["django.security"]["handlers"] == ["security"]
    assert "without_traceback" in config["handlers"]["security"]["filters"]
    assert config["loggers"]["django.template"]["level"] == "INFO"

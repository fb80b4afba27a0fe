"""The logging configuration config/settings.py gives Django (``LOGGING``), and its two filters.

Anything shaped like a Keygate key is masked in every log line, whoever logs it; refused requests
that Django logs with a stack trace (django.security) keep one line and lose the trace; the
template engine never logs below INFO; the gateway's access log is one JSON line per request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from keys import crypto

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FORMATS = ("plain", "json")


def key_redactor(key_prefix: str) -> Callable[[logging.LogRecord], bool]:
    """Log filter: mask key material in the message and the stack trace (keeps the public id).

    Anything shaped like a Keygate key (:func:`keys.crypto.redact`: the prefix, a public id, then
    8+ more key characters, so a whole key, a mistyped one, a truncated one) is masked: a key
    pasted into a URL ("Not Found: /keys/sk-kg-…"), an exception message, a library's debug line."""

    def redact_keys(record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
        masked = crypto.redact(message, key_prefix)
        if masked != message:  # the trace, if any, is now part of the message
            record.msg, record.args, record.exc_info, record.exc_text = masked, (), None, None
        return True

    return redact_keys


def without_traceback(record: logging.LogRecord) -> bool:
    """Log filter: keep the line, drop the stack trace (for requests refused on purpose)."""
    record.exc_info = None
    record.exc_text = None
    return True


def logging_config(*, level: str, access_level: str, log_format: str, key_prefix: str) -> dict[str, Any]:
    """``LOGGING`` for Django's dictConfig: ``level`` for everything, ``access_level`` for the
    gateway's access log, ``log_format`` (plain or json) for all but the access log (always JSON)."""
    redact_keys = key_redactor(key_prefix)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "redact_keys": {"()": lambda: redact_keys},
            # Django logs a refused request (a bad Host header, an oversized form, a forged session)
            # on django.security with the exception's stack trace. It is the client's fault, not a
            # bug: one line that says what was refused is what an operator needs.
            "without_traceback": {"()": lambda: without_traceback},
        },
        "formatters": {
            "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
            "json": {"()": "gateway.logfmt.JsonFormatter"},
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": log_format, "filters": ["redact_keys"]},
            "access": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["redact_keys"]},
            "security": {
                "class": "logging.StreamHandler",
                "formatter": log_format,
                "filters": ["without_traceback", "redact_keys"],
            },
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django": {"handlers": ["console"], "level": level, "propagate": False},
            "django.security": {"handlers": ["security"], "level": level, "propagate": False},
            # At DEBUG, Django's template engine logs every missing variable with the page's whole
            # context — which, on the page that shows a new key once, holds that key. Never below INFO.
            "django.template": {
                "handlers": ["console"],
                "level": "INFO" if level == "DEBUG" else level,
                "propagate": False,
            },
            # One JSON line per proxied request (request id, key's public id, model, status, timings).
            "keygate.access": {"handlers": ["access"], "level": access_level, "propagate": False},
        },
    }

"""Strict readers of the environment, shared by config/settings.py and config/serve.py.

Each reads ``os.environ`` as it is (no ``$VAR`` interpolation) and turns a value that is not what
the setting needs into ImproperlyConfigured naming the variable — never a silent default or a
truthy string (``SECURE_PROXY_SSL_HEADER=false`` is false). Unset or empty means the default.
"""

from __future__ import annotations

import math
import os

from django.core.exceptions import ImproperlyConfigured

__all__ = ["env_bool", "env_choice", "env_float", "env_int", "env_list", "env_str"]


def env_str(name: str, default: str = "") -> str:
    """A string; unset or empty is ``default``."""
    value = os.environ.get(name, "")
    return value if value != "" else default


def env_bool(name: str, default: bool) -> bool:
    """A strict boolean: anything but true/false/1/0/yes/no/on/off is a configuration error."""
    raw = env_str(name).strip().lower()
    if raw == "":
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {raw!r}")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    """A whole number ≥ ``minimum``; anything else is a configuration error."""
    raw = env_str(name).strip()
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    """A finite number ≥ ``minimum`` (seconds, usually); anything else is a configuration error."""
    raw = env_str(name).strip()
    if raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value) or value < minimum:
        raise ImproperlyConfigured(f"{name} must be a finite number of at least {minimum}, got {raw!r}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    """A comma-separated list (blanks dropped); unset is ``default``."""
    raw = env_str(name)
    if raw == "":
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    """One of ``choices`` (case-insensitive, returned as written in ``choices``)."""
    raw = env_str(name).strip()
    if raw == "":
        return default
    for choice in choices:
        if raw.lower() == choice.lower():
            return choice
    raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, got {raw!r}")

"""Waiting for what a server does in the background — usage rows, access-log lines, metrics,
state written by another process: poll to a deadline, never sleep and hope."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], *, timeout: float, interval: float = 0.05, what: str = "") -> T:
    """Poll ``predicate`` until it returns something truthy; that value, or AssertionError.

    ``what`` names the condition in the failure message.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what or 'condition'} not met within {timeout} s")
        time.sleep(interval)


def first(items: Any) -> Any:
    """The first truthy item of an iterable, else None (for predicates that find a line or row)."""
    return next((item for item in items if item), None)

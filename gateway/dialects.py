"""Kept for the modules that still import it (gateway.limits, tests/security): the dialects now
live in :mod:`gateway.wire`, which the lead may point those imports at and then delete this."""

from gateway.wire import JSON_CONTENT_TYPE, Dialect, Headers, error_body, render_error

__all__ = ["JSON_CONTENT_TYPE", "Dialect", "Headers", "error_body", "render_error"]

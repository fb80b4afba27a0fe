"""The demo's OpenAI ``embeddings`` endpoint: one deterministic unit vector per input (same
text, same vector), as floats or as base64 little-endian float32, with usage counted per
input."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import struct
from typing import Any

from gateway.providers.demo.answers import _model, estimate_tokens

DEFAULT_EMBEDDING_DIMENSIONS = 8
# Bounds what one odd request can make the demo allocate.
_MAX_EMBEDDING_DIMENSIONS = 8192


def _embedding_inputs(value: Any) -> list[tuple[str, int]]:
    """``(text_to_hash, tokens)`` per input: strings or token id lists."""
    if isinstance(value, str):
        return [(value, estimate_tokens(value))]
    if not isinstance(value, list) or not value:
        return [("", 1)]
    if all(isinstance(item, int) for item in value):  # one pre-tokenised input
        return [(json.dumps(value), max(1, len(value)))]
    inputs = []
    for item in value:
        if isinstance(item, str):
            inputs.append((item, estimate_tokens(item)))
        elif isinstance(item, list):
            inputs.append((json.dumps(item, default=str), max(1, len(item))))
        else:
            inputs.append((str(item), 1))
    return inputs


def _unit_vector(text: str, dimensions: int) -> list[float]:
    """A deterministic unit vector derived from ``text`` (same text, same vector)."""
    values: list[float] = []
    counter = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        values += [int.from_bytes(digest[i : i + 4], "little") / 2**31 - 1.0 for i in range(0, 32, 4)]
        counter += 1
    values = values[:dimensions]
    norm = math.sqrt(sum(value * value for value in values)) or 1.0
    return [value / norm for value in values]


def _embeddings(body: dict) -> dict:
    dimensions = body.get("dimensions")
    if not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1:
        dimensions = DEFAULT_EMBEDDING_DIMENSIONS
    dimensions = min(dimensions, _MAX_EMBEDDING_DIMENSIONS)
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    prompt_tokens = 0
    for index, (text, tokens) in enumerate(_embedding_inputs(body.get("input"))):
        vector = _unit_vector(text, dimensions)
        embedding: list[float] | str = vector
        if as_base64:
            # The openai SDK decodes base64 embeddings as little-endian float32.
            embedding = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode("ascii")
        data.append({"object": "embedding", "index": index, "embedding": embedding})
        prompt_tokens += tokens
    return {
        "object": "list",
        "data": data,
        "model": _model(body),
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }

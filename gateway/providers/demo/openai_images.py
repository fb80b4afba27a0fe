"""The demo's OpenAI ``images/generations`` endpoint: small one-colour PNGs (a colour per
prompt and index), as ``b64_json`` or as ``data:`` URLs, with image-style usage."""

from __future__ import annotations

import base64
import hashlib
import struct
import zlib

from gateway.providers.demo.answers import _now, estimate_tokens

# Bounds what one odd request can make the demo allocate.
_MAX_IMAGES = 10


def _png(rgb: bytes, size: int = 8) -> bytes:
    """A valid ``size`` x ``size`` PNG of one colour (RGB, 8 bits, no interlace)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    scanlines = (b"\x00" + rgb[:3] * size) * size  # filter type 0 before each row
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(scanlines)) + chunk(b"IEND", b"")
    )


def _images(body: dict) -> dict:
    prompt = body.get("prompt") if isinstance(body.get("prompt"), str) else ""
    count = body.get("n")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        count = 1
    count = min(count, _MAX_IMAGES)
    as_url = body.get("response_format") == "url"
    data = []
    for index in range(count):
        # One colour per prompt and index, so a demo gallery is not all alike.
        rgb = hashlib.sha256(f"{index}:{prompt}".encode()).digest()[:3]
        encoded = base64.b64encode(_png(rgb)).decode("ascii")
        image = {"url": f"data:image/png;base64,{encoded}"} if as_url else {"b64_json": encoded}
        data.append({**image, "revised_prompt": prompt})
    prompt_tokens = estimate_tokens(prompt)
    return {
        "created": _now(),
        "data": data,
        "usage": {
            "input_tokens": prompt_tokens,
            "input_tokens_details": {"text_tokens": prompt_tokens, "image_tokens": 0},
            "output_tokens": count,
            "total_tokens": prompt_tokens + count,
        },
    }

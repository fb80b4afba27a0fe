"""count_tokens: a real tokenizer, shipped in a package, and how exact it is."""

from __future__ import annotations

import subprocess
import sys

import tiktoken
import tiktoken_ext.openai_public as openai_public

from gateway.translate import Protocol, count_tokens
from gateway.translate.tokens import IMAGE_TOKENS, encoding

HELLO = [{"role": "user", "content": "hello world"}]
# OpenAI cookbook "How to count tokens with tiktoken": gpt-4o bills these messages as 124 prompt tokens.
COOKBOOK = [
    {
        "role": "system",
        "content": "You are a helpful, pattern-following assistant that translates corporate jargon into plain English.",
    },
    {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
    {"role": "system", "name": "example_assistant", "content": "Things working well together will increase revenue."},
    {
        "role": "system",
        "name": "example_user",
        "content": "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Let's talk later when we're less busy about how to do better.",
    },
    {
        "role": "user",
        "content": "This late pivot means we don't have time to boil the ocean for the client deliverable.",
    },
]


def test_the_bundled_vocabulary_is_tiktokens_o200k_base():
    spec = {}
    original = openai_public.load_tiktoken_bpe
    openai_public.load_tiktoken_bpe = lambda *args, **kwargs: encoding()._mergeable_ranks
    try:
        spec = openai_public.o200k_base()  # tiktoken's own definition, fed our bundled ranks
    finally:
        openai_public.load_tiktoken_bpe = original
    official = tiktoken.Encoding(**spec)
    text = "Let's count: 12345 tokens, naïvely — 東京 🚀\n\n  def f(x): return x**2"
    assert encoding().encode(text) == official.encode(text)
    assert encoding()._pat_str == spec["pat_str"] and encoding()._special_tokens == spec["special_tokens"]


def test_known_token_ids_and_counts():
    assert encoding().encode("hello world") == [24912, 2375]
    assert count_tokens({"messages": HELLO}, protocol=Protocol.CHAT) == 3 + 1 + 2 + 3
    assert count_tokens({"messages": COOKBOOK}, protocol=Protocol.CHAT) == 124


def test_the_same_conversation_counts_the_same_in_every_protocol():
    chat = count_tokens({"messages": [{"role": "system", "content": "Be brief."}, *HELLO]}, protocol=Protocol.CHAT)
    messages = count_tokens({"system": "Be brief.", "messages": HELLO}, protocol=Protocol.MESSAGES)
    responses = count_tokens({"instructions": "Be brief.", "input": "hello world"}, protocol=Protocol.RESPONSES)
    assert chat == messages == responses


def test_tools_tool_calls_and_images_add_to_the_count():
    base = count_tokens({"messages": HELLO}, protocol=Protocol.MESSAGES)
    tools = [{"name": "get_weather", "description": "Weather for a city", "input_schema": {"type": "object"}}]
    assert count_tokens({"messages": HELLO, "tools": tools}, protocol=Protocol.MESSAGES) > base + 10
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA" * 1000}}
    with_image = [{"role": "user", "content": [{"type": "text", "text": "hello world"}, image]}]
    assert count_tokens({"messages": with_image}, protocol=Protocol.MESSAGES) == base + IMAGE_TOKENS
    call = [
        *HELLO,
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t", "name": "get_weather", "input": {"city": "Paris"}}],
        },
    ]
    assert count_tokens({"messages": call}, protocol=Protocol.MESSAGES) > base + 5


def test_the_tokenizer_loads_without_any_network_or_download_cache():
    script = (
        "import socket\n"
        "def refuse(*a, **k): raise SystemExit('network used')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "from gateway.translate import Protocol, count_tokens\n"
        "print(count_tokens({'messages': [{'role': 'user', 'content': 'hello world'}]}, protocol=Protocol.CHAT))\n"
    )
    env = {"TIKTOKEN_CACHE_DIR": "/nonexistent", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "9"

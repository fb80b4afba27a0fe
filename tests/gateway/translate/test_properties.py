"""Property tests: random answers and requests, translated between every pair of protocols.

- a random upstream answer, streamed in its protocol and translated event by event, reassembles (with
  the order and index rules of the client protocol checked on the way) to the same meaning as the
  non-streamed answer translated whole — and both keep the upstream's meaning and usage;
- a random valid request translated there and back keeps its meaning.
"""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.translate import Protocol, TranslationError, translate_request, translate_response

from .answers import AS, Answer, meaning
from .streams import ASSEMBLE, UPSTREAM, translate_stream

PAIRS = [pytest.param(s, t, id=f"{s}-to-{t}") for s, t in itertools.permutations(Protocol, 2)]
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
name = st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True)
arguments = st.dictionaries(name, st.one_of(st.integers(-5, 5), text, st.booleans()), max_size=3).map(
    lambda d: json.dumps(d, sort_keys=True)
)


@st.composite
def answers(draw: st.DrawFn) -> Answer:
    calls = tuple((f"call_{k}", draw(name), draw(arguments)) for k in range(draw(st.integers(0, 3))))
    stop = "tool_calls" if calls else draw(st.sampled_from(["stop", "length"]))
    read, created, fresh = draw(st.integers(0, 500)), draw(st.integers(0, 500)), draw(st.integers(1, 500))
    usage = (fresh + read + created, draw(st.integers(1, 500)), read, created)
    return Answer(draw(text), draw(text), calls, stop, usage)


@pytest.mark.parametrize(("source", "target"), PAIRS)
@FAST
@given(answer=answers(), size=st.integers(1, 8))
def test_a_streamed_answer_reassembles_to_the_translated_whole_answer(source, target, answer, size):
    upstream = AS[source](answer)
    whole = meaning(translate_response(upstream, source=source, target=target, model="asked"), target)
    events, translator = translate_stream(UPSTREAM[source](upstream, size), source, target)
    streamed = meaning(ASSEMBLE[target](events), target)
    assert streamed == whole == answer
    assert (
        translator.input_tokens,
        translator.output_tokens,
        translator.cache_read_tokens,
        translator.cache_creation_tokens,
    ) == answer.usage


@pytest.mark.parametrize(("source", "target"), PAIRS)
@FAST
@given(answer=answers(), cut=st.integers(0, 30))
def test_a_stream_cut_short_still_ends_the_way_the_client_protocol_requires(source, target, answer, cut):
    upstream = UPSTREAM[source](AS[source](answer))[:cut]
    events, _ = translate_stream(upstream, source, target)
    ASSEMBLE[target](events, complete=False)  # asserts the order rules, whatever was cut


# ----------------------------------------------------------------------------- requests there and back
@st.composite
def conversations(draw: st.DrawFn) -> dict:
    """A canonical request in neutral form: system, turns of user text / assistant text+calls / results."""
    words = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=30)
    turns = []
    for k in range(draw(st.integers(1, 3))):
        if not turns or turns[-1][0] != "user":
            turns.append(("user", draw(words)))
        calls = [(f"call_{k}_{j}", draw(name), draw(arguments)) for j in range(draw(st.integers(0, 2)))]
        if k < 2 or calls:
            turns.append(("assistant", draw(st.one_of(st.just(""), words)) if calls else draw(words), calls))
            if calls:
                turns.append(("results", [(cid, draw(words)) for cid, _, _ in calls]))
                turns.append(("user", draw(words)))
    return {
        "system": draw(st.one_of(st.none(), words)),
        "turns": turns,
        "max_tokens": draw(st.integers(1, 4000)),
        "temperature": draw(st.one_of(st.none(), st.floats(0, 1))),
        "top_p": draw(st.one_of(st.none(), st.floats(0, 1))),
        "stop": draw(st.lists(words, max_size=3)),
        "tools": draw(st.lists(name, max_size=3, unique=True)),
        "choice": draw(st.sampled_from(["auto", "required", "none", "named"])),
        "stream": draw(st.booleans()),
    }


def as_chat_request(c: dict) -> dict:
    messages = [{"role": "system", "content": c["system"]}] if c["system"] else []
    for turn in c["turns"]:
        if turn[0] == "user":
            messages.append({"role": "user", "content": turn[1]})
        elif turn[0] == "assistant":
            message = {"role": "assistant", "content": turn[1] or None}
            if turn[2]:
                message["tool_calls"] = [
                    {"id": i, "type": "function", "function": {"name": n, "arguments": a}} for i, n, a in turn[2]
                ]
            messages.append(message)
        else:
            messages += [{"role": "tool", "tool_call_id": i, "content": out} for i, out in turn[1]]
    body = {"model": "m", "messages": messages, "max_completion_tokens": c["max_tokens"], "stream": c["stream"]}
    for key in ("temperature", "top_p"):
        if c[key] is not None:
            body[key] = c[key]
    if c["stop"]:
        body["stop"] = c["stop"]
    if c["tools"]:
        body["tools"] = [
            {"type": "function", "function": {"name": n, "parameters": {"type": "object"}}} for n in c["tools"]
        ]
        body["tool_choice"] = (
            {"type": "function", "function": {"name": c["tools"][0]}} if c["choice"] == "named" else c["choice"]
        )
    if c["stream"]:
        body["stream_options"] = {"include_usage": True}
    return body


def chat_meaning(body: dict) -> dict:
    """What a chat request asks for, ignoring spellings that mean the same."""
    out = dict(body)
    out["max_completion_tokens"] = out.pop("max_tokens", None) or out.get("max_completion_tokens")
    if not out.get("stream"):
        out.pop("stream", None)
        out.pop("stream_options", None)
    messages = []
    for m in out["messages"]:
        m = dict(m)
        if isinstance(m.get("content"), list):
            m["content"] = "".join(p["text"] for p in m["content"])
        if m.get("role") == "assistant":
            m["content"] = m.get("content") or None
            for call in m.get("tool_calls") or []:
                call["function"]["arguments"] = json.dumps(json.loads(call["function"]["arguments"]), sort_keys=True)
        messages.append(m)
    out["messages"] = messages
    out.pop("store", None)
    return out


@pytest.mark.parametrize("via", [Protocol.MESSAGES, Protocol.RESPONSES])
@FAST
@given(conversation=conversations())
def test_a_chat_request_translated_there_and_back_keeps_its_meaning(via, conversation):
    body = as_chat_request(conversation)
    if via is Protocol.RESPONSES and conversation["stop"]:
        with pytest.raises(TranslationError) as refused:
            translate_request(body, source=Protocol.CHAT, target=via)
        assert refused.value.param == "stop"  # the Responses API has no stop sequences
        return
    there = translate_request(body, source=Protocol.CHAT, target=via)
    back = translate_request(there, source=via, target=Protocol.CHAT)
    assert there["model"] == "m" and bool(there.get("stream")) == conversation["stream"]
    assert chat_meaning(back) == chat_meaning(body)


@pytest.mark.parametrize("via", [Protocol.CHAT, Protocol.RESPONSES])
@FAST
@given(conversation=conversations())
def test_a_messages_request_translated_there_and_back_keeps_its_meaning(via, conversation):
    if via is Protocol.RESPONSES:
        conversation = {**conversation, "stop": []}  # the Responses API has no stop sequences
    body = translate_request(as_chat_request(conversation), source=Protocol.CHAT, target=Protocol.MESSAGES)
    there = translate_request(body, source=Protocol.MESSAGES, target=via)
    back = translate_request(there, source=via, target=Protocol.MESSAGES)
    assert back == body


@pytest.mark.parametrize("via", [Protocol.CHAT, Protocol.MESSAGES])
@FAST
@given(conversation=conversations())
def test_a_responses_request_translated_there_and_back_keeps_its_meaning(via, conversation):
    body = translate_request(
        as_chat_request({**conversation, "stop": []}), source=Protocol.CHAT, target=Protocol.RESPONSES
    )
    body.pop("store")
    there = translate_request(body, source=Protocol.RESPONSES, target=via)
    back = translate_request(there, source=via, target=Protocol.RESPONSES)
    back.pop("store")
    assert responses_meaning(back) == responses_meaning(body)


def responses_meaning(body: dict) -> dict:
    items = [
        {**item, "arguments": json.dumps(json.loads(item["arguments"]), sort_keys=True)}
        if "arguments" in item
        else item
        for item in body["input"]
    ]
    return {**body, "input": items}

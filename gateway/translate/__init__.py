"""Translation between OpenAI Chat Completions, Anthropic Messages and the OpenAI Responses API.

Pure functions, no I/O: request bodies, non-streamed answers, SSE streams event by event, usage and
errors. Chat Completions is the hub: Chat ⇄ Messages and Chat ⇄ Responses are written out; Responses ⇄
Messages is the two steps composed. Whatever cannot be mapped raises ``TranslationError`` naming the
field (the gateway answers 400); nothing meaningful is dropped silently — what is knowingly left out is
listed in each module's docstring.

Modules: ``base`` (protocols, usage, stop reasons), ``chat_messages`` / ``messages_chat`` (requests),
``chat_messages_response`` (answers), ``responses`` (Responses requests to Chat, and answers both
ways), ``chat_responses`` (Chat requests to Responses), ``stream`` / ``stream_responses`` (SSE),
``errors``, ``tokens`` (offline count_tokens).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import chat_messages, chat_messages_response, chat_responses, messages_chat, responses
from .base import DEFAULT_MAX_TOKENS, Protocol, TranslationError, Usage
from .errors import translate_error
from .stream import ChatToMessages, MessagesToChat, Passthrough, encode, parse
from .stream_responses import ChatToResponses, ResponsesToChat
from .tokens import count_tokens

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "Protocol",
    "StreamTranslator",
    "TranslationError",
    "count_tokens",
    "translate_error",
    "translate_request",
    "translate_response",
]

CHAT, MESSAGES, RESPONSES = Protocol.CHAT, Protocol.MESSAGES, Protocol.RESPONSES

_REQUESTS: dict[tuple[Protocol, Protocol], Callable[[dict], dict]] = {
    (CHAT, MESSAGES): chat_messages.chat_to_messages_request,
    (MESSAGES, CHAT): messages_chat.messages_to_chat_request,
    (RESPONSES, CHAT): responses.responses_to_chat_request,
    (CHAT, RESPONSES): chat_responses.chat_to_responses_request,
}
_RESPONSES: dict[tuple[Protocol, Protocol], Callable[..., dict]] = {
    (MESSAGES, CHAT): chat_messages_response.messages_to_chat_response,
    (CHAT, MESSAGES): chat_messages_response.chat_to_messages_response,
    (CHAT, RESPONSES): responses.chat_to_responses_response,
    (RESPONSES, CHAT): responses.responses_to_chat_response,
}


def _check(source: Any, target: Any) -> tuple[Protocol, Protocol]:
    return Protocol(source), Protocol(target)


def translate_request(body: dict, *, source: Protocol, target: Protocol) -> dict:
    """The client's body (in ``source``) as a body for an upstream speaking ``target``.

    Keeps ``model`` and ``stream`` as given; a streamed chat target asks for usage
    (``stream_options.include_usage``). Raises TranslationError naming a field it cannot map.
    """
    source, target = _check(source, target)
    if not isinstance(body, dict):
        raise TranslationError("the request body must be a JSON object")
    if source is target:
        return body
    if (source, target) in _REQUESTS:
        return _REQUESTS[source, target](body)
    via_chat = _REQUESTS[source, CHAT](body)
    via_chat.pop("stream_options", None)
    return _REQUESTS[CHAT, target](via_chat)


def translate_response(body: dict, *, source: Protocol, target: Protocol, model: str) -> dict:
    """An upstream non-streamed answer in ``source`` as the client's ``target`` shape (``model`` = the
    name the client asked for)."""
    source, target = _check(source, target)
    if source is target:
        return body
    if (source, target) in _RESPONSES:
        return _RESPONSES[source, target](body, model=model)
    return _RESPONSES[CHAT, target](_RESPONSES[source, CHAT](body, model=model), model=model)


def _stage(source: Protocol, target: Protocol, model: str, include_usage: bool) -> Any:
    if (source, target) == (MESSAGES, CHAT):
        return MessagesToChat(model, include_usage)
    if (source, target) == (CHAT, MESSAGES):
        return ChatToMessages(model)
    if (source, target) == (RESPONSES, CHAT):
        return ResponsesToChat(model, include_usage)
    return ChatToResponses(model)


class StreamTranslator:
    """Upstream SSE events in ``source`` -> client SSE bytes in ``target``, event by event, as they arrive.

    ``input_tokens`` … ``cache_creation_tokens`` hold what the upstream reported so far (``input_tokens``
    includes the cached parts, as ``gateway/sse.py`` counts). ``include_usage=False`` leaves out the
    chat usage chunk for a chat client that did not ask for one.
    """

    def __init__(self, *, source: Protocol, target: Protocol, model: str, include_usage: bool = True) -> None:
        source, target = _check(source, target)
        self.source, self.target = source, target
        if source is target:
            self._stages: list[Any] = [Passthrough(source)]
        elif CHAT in (source, target):
            self._stages = [_stage(source, target, model, include_usage)]
        else:
            self._stages = [_stage(source, CHAT, model, True), _stage(CHAT, target, model, include_usage)]

    def feed(self, event: str | None, data: bytes) -> bytes:
        """One upstream SSE event (its ``event:`` name or None, its raw ``data:`` payload, e.g.
        ``b'[DONE]'``) -> zero or more complete SSE events for the client (b'' when nothing is due)."""
        events = [(event, parse(data))]
        for stage in self._stages:
            events = [out for name, payload in events for out in stage.feed(name, payload)]
        return encode(events, self.target) if events else b""

    def close(self) -> bytes:
        """At the end of the upstream stream: what the client protocol still requires (message_stop,
        ``data: [DONE]``, response.completed …), even when the upstream ended early. Idempotent."""
        events: list[Any] = []
        for stage in self._stages:
            events = [out for name, payload in events for out in stage.feed(name, payload)] + stage.close()
        return encode(events, self.target) if events else b""

    @property
    def usage(self) -> Usage:
        return self._stages[0].usage

    @property
    def input_tokens(self) -> int:
        return self.usage.input_tokens

    @property
    def output_tokens(self) -> int:
        return self.usage.output_tokens

    @property
    def cache_read_tokens(self) -> int:
        return self.usage.cache_read_tokens

    @property
    def cache_creation_tokens(self) -> int:
        return self.usage.cache_creation_tokens

"""Streamed chat completions on OpenAI (``gpt-4o-mini`` by default), text first, tool calls at the end.

Streaming is what makes the bot answer in about a second: the first sentence goes to TTS while the model is
still writing the second. Tool-call arguments arrive in fragments, so they are assembled here and each call
is emitted once, complete, as the ``LanguageModel`` contract promises.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from openai import AsyncOpenAI

from dialogue.llm import Message, ReplyPart, TextDelta, ToolCall, ToolSpec
from media.budget import DEFAULT_BUDGETS, stream_with_budget
from media.clients import Rotation, rotation
from media.errors import ProviderError
from media.warmup import warm_openai


class OpenAILanguageModel:
    """First part within ``first_token_timeout_s``, the whole reply within ``total_timeout_s``."""

    def __init__(
        self,
        client: AsyncOpenAI | Rotation[AsyncOpenAI],
        *,
        model: str = "gpt-4o-mini",
        first_token_timeout_s: float = DEFAULT_BUDGETS.llm_first_token_s,
        total_timeout_s: float = DEFAULT_BUDGETS.llm_total_s,
        temperature: float = 0.3,
        max_tokens: int = 300,
        max_attempts: int = 2,
    ) -> None:
        self._clients = rotation(client)
        self.model = model
        self.first_token_timeout_s = first_token_timeout_s
        self.total_timeout_s = total_timeout_s
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.max_attempts = max_attempts
        self.name = f"openai:{model}"

    async def warm(self) -> bool:
        """Opens the call's connection ahead of its first turn (see ``media.warmup``)."""
        return await warm_openai(self._clients, self.model)

    def stream_reply(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> AsyncIterator[ReplyPart]:
        return stream_with_budget(
            lambda: self._request(messages, tools),
            stage="llm",
            first_item_s=self.first_token_timeout_s,
            # A pause this long mid-sentence is dead air on the phone, as bad as a slow first token.
            idle_s=self.first_token_timeout_s,
            total_s=self.total_timeout_s,
            max_attempts=self.max_attempts,
        )

    async def _request(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> AsyncIterator[ReplyPart]:
        # The SDK still sends the request (auth, base URL, status errors); the event lines are read raw.
        # Building a pydantic ``ChatCompletionChunk`` per token cost about a third of the CPU of a whole
        # reply, which at two hundred calls is more than a core can spare.
        # The SDK also walks every typed parameter through its annotations before sending: about 5 ms of CPU
        # for a dozen messages, growing with the call's history. Messages and tools are built in wire form
        # already, so they travel in ``extra_body``, which the SDK sends as given and which takes precedence
        # over the empty typed ``messages`` (its documented merge: "the second mapping takes precedence").
        body: dict[str, Any] = {"messages": [message_to_wire(m) for m in messages]}
        if tools:
            body["tools"] = [tool_to_wire(t) for t in tools]
        calls: dict[int, _PartialCall] = {}
        async with self._clients.next().chat.completions.with_streaming_response.create(
            model=self.model,
            messages=[],
            stream=True,
            temperature=self.temperature,
            max_completion_tokens=self.max_tokens,
            timeout=self.total_timeout_s,
            extra_body=body,
        ) as response:
            done = False
            async for line in response.iter_lines():
                # Read on past ``[DONE]`` to the body's end: a response closed unread takes its
                # connection with it, and the next turn would pay a TCP and TLS handshake.
                chunk = None if done else parse_event_line(line)
                if chunk is None:
                    continue
                if chunk is DONE:
                    done = True
                    continue
                for part in _text_parts(chunk, calls):
                    yield part
        for index in sorted(calls):
            yield calls[index].finish()


DONE: Final[dict[str, Any]] = {}
"""What ``parse_event_line`` returns for ``data: [DONE]``."""


def parse_event_line(line: str) -> dict[str, Any] | None:
    """One server-sent-events line of a chat stream: a chunk, ``DONE``, or None for anything else.

    OpenAI puts each chunk on one ``data:`` line; comments, ``event:``/``id:`` lines and the blank
    separators carry nothing for us. An ``{"error": …}`` payload mid-stream means the server gave up.
    """
    if not line.startswith("data:"):
        return None
    payload = line[5:].strip()
    if payload == "[DONE]":
        return DONE
    chunk = json.loads(payload)
    if not isinstance(chunk, dict):
        raise ProviderError("llm", "stream event is not an object", retryable=False)
    error = chunk.get("error")
    if error:
        message = error.get("message") if isinstance(error, dict) else error
        raise ProviderError("llm", f"provider error: {str(message)[:200]}", retryable=True)
    return chunk


def _text_parts(chunk: dict[str, Any], calls: dict[int, _PartialCall]) -> list[ReplyPart]:
    """Text deltas of one chunk; tool-call fragments are collected into ``calls`` for the end."""
    parts: list[ReplyPart] = []
    for choice in chunk.get("choices") or ():  # the usage-only last chunk has no choices
        delta = choice.get("delta") or {}
        content = delta.get("content")
        if content:
            parts.append(TextDelta(content))
        for fragment in delta.get("tool_calls") or ():
            call = calls.setdefault(int(fragment.get("index", 0)), _PartialCall())
            call.id = fragment.get("id") or call.id
            function = fragment.get("function")
            if function:
                call.name = function.get("name") or call.name
                call.arguments += function.get("arguments") or ""
    return parts


@dataclass(slots=True)
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: str = ""

    def finish(self) -> ToolCall:
        try:
            args = json.loads(self.arguments) if self.arguments.strip() else {}
        except json.JSONDecodeError:
            detail = f"tool call {self.name!r} has arguments that are not JSON"
            raise ProviderError("llm", detail, retryable=False) from None
        if not self.name or not isinstance(args, dict):
            raise ProviderError(
                "llm", "tool call without a name or with non-object arguments", retryable=False
            )
        return ToolCall(id=self.id or f"call_{self.name}", name=self.name, arguments=args)


def tool_to_wire(tool: ToolSpec) -> Any:
    return {
        "type": "function",
        "function": {"name": tool.name, "description": tool.description, "parameters": tool.parameters},
    }


def message_to_wire(message: Message) -> Any:
    """Our ``Message`` in the Chat Completions shape (loosely typed: the SDK's TypedDict union is huge)."""
    wire: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.role == "assistant" and message.tool_calls:
        wire["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments, ensure_ascii=False)},
            }
            for call in message.tool_calls
        ]
    if message.role == "tool":
        wire["tool_call_id"] = message.tool_call_id or ""
    return wire

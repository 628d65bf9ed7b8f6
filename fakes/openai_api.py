"""A loopback OpenAI: ``POST /v1/audio/transcriptions`` (multipart) and ``POST /v1/chat/completions`` (SSE).

It answers in the wire shapes the official SDK parses (``chat.completion.chunk`` events ending in
``data: [DONE]``, ``{"error": {...}}`` bodies with real status codes), so the production adapters are tested
through the real SDK, its HTTP stack and its error mapping, not through a mock of them.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from fakes.asgi import Exchange
from fakes.behaviour import FakeBehaviour, FakeReply, Fault, Pacing, RecordedRequest

_ERRORS = {
    Fault.RATE_LIMIT: (429, "Rate limit reached for requests", "requests", "rate_limit_exceeded"),
    Fault.SERVER_ERROR: (500, "The server had an error while processing your request.", "server_error", None),
}


def _error(message: str, type_: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


async def handle(ex: Exchange, behaviour: FakeBehaviour) -> None:
    if ex.method == "GET" and ex.path.startswith("/v1/models/") and ex.path.count("/") == 3:
        await _model(ex, behaviour)
        return
    if ex.method != "POST" or ex.path not in ("/v1/audio/transcriptions", "/v1/chat/completions"):
        await ex.respond_json(
            404, _error(f"Unknown route {ex.method} {ex.path}", "invalid_request_error", None)
        )
        return
    token = ex.headers.get("authorization", "").removeprefix("Bearer ").strip()
    expected = behaviour.openai_api_key
    if not token or (expected is not None and token != expected):
        await ex.respond_json(
            401, _error("Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        )
        return
    if ex.path == "/v1/audio/transcriptions":
        await _transcribe(ex, behaviour)
    else:
        await _chat(ex, behaviour)


async def _model(ex: Exchange, behaviour: FakeBehaviour) -> None:
    """``GET /v1/models/{model}``: the model object, as the real API describes any model it serves."""
    token = ex.headers.get("authorization", "").removeprefix("Bearer ").strip()
    if not token or (behaviour.openai_api_key is not None and token != behaviour.openai_api_key):
        await ex.respond_json(
            401, _error("Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        )
        return
    model = ex.path.rsplit("/", 1)[1]
    behaviour.requests.append(RecordedRequest("models", ex.path, _masked(ex.headers), {}, ex.client_port))
    await ex.respond_json(200, {"id": model, "object": "model", "created": 1715367049, "owned_by": "system"})


async def _common_fault(ex: Exchange, fault: Fault | None) -> bool:
    """Plays the faults that look alike on both routes; True if the request is dealt with."""
    if fault is Fault.TIMEOUT:
        await ex.hold()
        return True
    if fault in _ERRORS:
        status, message, type_, code = _ERRORS[fault]
        await ex.respond_json(status, _error(message, type_, code))
        return True
    return False


async def _transcribe(ex: Exchange, behaviour: FakeBehaviour) -> None:
    form = await ex.form()
    upload = form.pop("file_data", None)
    behaviour.requests.append(RecordedRequest("stt", ex.path, _masked(ex.headers), form, ex.client_port))
    fault, pacing = behaviour.conduct("stt", str(form.get("model", "")))
    if not await ex.pause(pacing.ttfb_ms) or await _common_fault(ex, fault):
        return
    if "file_bytes" not in form or "model" not in form:
        await ex.respond_json(400, _error("Missing file or model.", "invalid_request_error", None))
        return
    text = behaviour.transcript_for(upload if isinstance(upload, bytes) else None)
    if fault is Fault.MALFORMED:
        await ex.respond(200, b'{"text": "' + text.encode()[:8], "application/json")
        return
    if form.get("stream") == "true":
        await _transcribe_stream(ex, pacing, text, reset=fault is Fault.RESET)
        return
    if form.get("response_format") == "text":
        body = (text + "\n").encode()
        content_type = "text/plain; charset=utf-8"
    else:
        body = json.dumps(
            {"text": text, "usage": {"type": "duration", "seconds": 1}}, ensure_ascii=False
        ).encode()
        content_type = "application/json"
    if fault is Fault.RESET:
        # Promise the whole body, deliver half of it, then drop the connection.
        await ex.start(200, content_type, {"content-length": str(len(body))})
        await ex.write(body[: len(body) // 2])
        return
    await ex.respond(200, body, content_type)


async def _transcribe_stream(ex: Exchange, pacing: Pacing, text: str, *, reset: bool) -> None:
    await ex.start(200, "text/event-stream")
    for word in _tokens(text):
        await ex.write(_sse({"type": "transcript.text.delta", "delta": word}))
        if reset:
            return
        if not await ex.pause(pacing.per_token_ms):
            return
    await ex.write(_sse({"type": "transcript.text.done", "text": text}))
    await ex.end()


async def _chat(ex: Exchange, behaviour: FakeBehaviour) -> None:
    body = await ex.json()
    behaviour.requests.append(RecordedRequest("chat", ex.path, _masked(ex.headers), body, ex.client_port))
    fault, pacing = behaviour.conduct("chat", str(body.get("model", "")))
    if not await ex.pause(pacing.ttfb_ms) or await _common_fault(ex, fault):
        return
    if not body.get("messages"):
        await ex.respond_json(400, _error("'messages' is required.", "invalid_request_error", None))
        return
    reply = behaviour.next_reply()
    model = str(body.get("model", "gpt-4o-mini"))
    if not body.get("stream"):
        await ex.respond_json(200, _completion(model, reply))
        return
    await ex.start(200, "text/event-stream")
    if fault is Fault.MALFORMED:
        await ex.write(b'data: {"id": "chatcmpl-fake", "choices": [{"delta": {"content": "Gu\n\n')
        await ex.write(b"data: [DONE]\n\n")
        await ex.end()
        return
    for n, chunk in enumerate(_chunks(model, reply, usage=bool(body.get("stream_options")))):
        await ex.write(_sse(chunk))
        if fault is Fault.RESET and n >= 1:
            return
        # The role-only opening delta travels with the first token (it carries no text), so the first
        # word arrives ``ttfb_ms`` after the request, as the benchmarks' "LLM first token" promises.
        if n and not await ex.pause(pacing.per_token_ms):
            return
    await ex.write(b"data: [DONE]\n\n")
    await ex.end()


def _chunks(model: str, reply: FakeReply, *, usage: bool) -> list[dict[str, Any]]:
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    deltas += [{"content": token} for token in _tokens(reply.text)]
    for index, call in enumerate(reply.tool_calls):
        arguments = json.dumps(call.arguments, ensure_ascii=False)
        head = {"index": index, "id": f"call_fake_{index}", "type": "function"}
        deltas.append({"tool_calls": [{**head, "function": {"name": call.name, "arguments": ""}}]})
        half = len(arguments) // 2
        for piece in (arguments[:half], arguments[half:]):
            deltas.append({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    finish = "tool_calls" if reply.tool_calls else "stop"
    chunks = [_chunk(model, [{"index": 0, "delta": d, "finish_reason": None}]) for d in deltas]
    chunks.append(_chunk(model, [{"index": 0, "delta": {}, "finish_reason": finish}]))
    if usage:
        chunks.append(
            {**_chunk(model, []), "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
        )
    return chunks


def _chunk(model: str, choices: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
    }


def _completion(model: str, reply: FakeReply) -> dict[str, Any]:
    calls = [
        {
            "id": f"call_fake_{i}",
            "type": "function",
            "function": {"name": c.name, "arguments": json.dumps(c.arguments, ensure_ascii=False)},
        }
        for i, c in enumerate(reply.tool_calls)
    ]
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None, "refusal": None}
    if calls:
        message["tool_calls"] = calls
    finish = "tool_calls" if calls else "stop"
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def _tokens(text: str) -> list[str]:
    """Word pieces with their leading space, roughly how the model's tokens arrive."""
    return re.findall(r"\s*\S+", text)


def _sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, ensure_ascii=False).encode() + b"\n\n"


def _masked(headers: dict[str, str]) -> dict[str, str]:
    return {k: ("***" if k in ("authorization", "xi-api-key") else v) for k, v in headers.items()}

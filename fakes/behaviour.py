"""What the loopback provider fakes do: pacing, injected faults, scripted answers and a request log.

One mutable object shared by the fake servers and the test (or benchmark) that drives them, so a test can
change latency or inject a fault between two turns of the same call without restarting anything.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from fakes.clips import ClipRegistry


class Fault(StrEnum):
    TIMEOUT = "timeout"
    """Accept the request, then never answer (until the client gives up or the server stops)."""
    RATE_LIMIT = "429"
    SERVER_ERROR = "500"
    RESET = "reset"
    """Start a valid answer, then drop the connection mid-body."""
    MALFORMED = "malformed"
    """HTTP 200 with a body that does not parse (broken JSON, a broken SSE event, JSON instead of audio)."""
    REFUSE = "refuse"
    """Realtime socket: refuse the WebSocket upgrade (HTTP 403)."""
    PARTIALS_ONLY = "partials-only"
    """Realtime socket: send the partial transcripts of a commit, never its final one."""


HTTP_FAULTS: tuple[Fault, ...] = tuple(f for f in Fault if f not in (Fault.REFUSE, Fault.PARTIALS_ONLY))
"""The faults the HTTP routes play; the other two exist only on the realtime socket."""


Endpoint = Literal["stt", "chat", "tts", "realtime", "models", "tts_models"]
"""``models`` and ``tts_models`` are the warm-up reads (OpenAI's model, ElevenLabs' model list): recorded,
never faulted."""


@dataclass(slots=True)
class Pacing:
    ttfb_ms: float = 0.0
    """Delay before the response headers and first bytes."""
    per_token_ms: float = 0.0
    """Delay between chat chunks, or between TTS audio chunks."""


@dataclass(slots=True)
class EndpointBehaviour:
    pacing: Pacing = field(default_factory=Pacing)
    fault: Fault | None = None
    fault_remaining: int = 0
    """How many more requests get ``fault``; negative means every request from now on."""

    def take_fault(self) -> Fault | None:
        if self.fault is None or self.fault_remaining == 0:
            return None
        if self.fault_remaining > 0:
            self.fault_remaining -= 1
        return self.fault


@dataclass(frozen=True, slots=True)
class FakeToolCall:
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FakeReply:
    """One scripted chat answer: spoken text, then any tool calls (both may be present)."""

    text: str = ""
    tool_calls: tuple[FakeToolCall, ...] = ()


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    endpoint: Endpoint
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    """Parsed JSON body, or the multipart form fields (the uploaded file as its size in ``file_bytes``)."""
    client_port: int = 0
    """The client's TCP port: requests over one kept-alive connection share it."""


DEFAULT_TRANSCRIPT = "Ich möchte bitte meinen Zählerstand durchgeben."
DEFAULT_REPLY = "Gerne helfe ich Ihnen dabei. Nennen Sie mir bitte Ihre Kundennummer."


@dataclass(slots=True)
class FakeBehaviour:
    stt: EndpointBehaviour = field(default_factory=EndpointBehaviour)
    chat: EndpointBehaviour = field(default_factory=EndpointBehaviour)
    tts: EndpointBehaviour = field(default_factory=EndpointBehaviour)
    realtime: EndpointBehaviour = field(default_factory=EndpointBehaviour)
    """The realtime transcription socket: ``ttfb_ms`` from commit to first delta, faults per commit."""
    transcripts: deque[str] = field(default_factory=deque)
    """Answers for the next transcriptions, in order; ``default_transcript`` when empty."""
    replies: deque[FakeReply] = field(default_factory=deque)
    """Answers for the next chat completions, in order; ``default_reply`` when empty."""
    default_transcript: str = DEFAULT_TRANSCRIPT
    default_reply: FakeReply = field(default_factory=lambda: FakeReply(DEFAULT_REPLY))
    openai_api_key: str | None = None
    """The bearer token the OpenAI fake accepts; ``None`` accepts any non-empty one."""
    elevenlabs_api_key: str | None = None
    """The ``xi-api-key`` the ElevenLabs fake accepts; ``None`` accepts any non-empty one."""
    requests: list[RecordedRequest] = field(default_factory=list)
    clips: ClipRegistry = field(default_factory=ClipRegistry)
    """Caller clips by text: a transcription answers with the words of the clips in its audio, so a test
    sees whether a whole turn or half of it reached STT. Empty (or no clip in the audio): the queue."""
    per_model: dict[tuple[Endpoint, str], EndpointBehaviour] = field(default_factory=dict)
    """Faults (and pacing, where set) for one model only: the primary model fails, the fallback answers."""
    paced_models: set[tuple[Endpoint, str]] = field(default_factory=set)

    def endpoint(self, name: Endpoint) -> EndpointBehaviour:
        result: EndpointBehaviour = getattr(self, name)
        return result

    def conduct(self, name: Endpoint, model: str | None = None) -> tuple[Fault | None, Pacing]:
        """The fault (if any) and pacing one request to ``name`` for ``model`` gets.

        A model's own fault comes first, then the endpoint's; pacing is the model's if it was paced on its
        own, else the endpoint's. So endpoint-wide and per-model injections never hide each other.
        """
        base = self.endpoint(name)
        own = self.per_model.get((name, model)) if model is not None else None
        fault = own.take_fault() if own is not None else None
        if fault is None:
            fault = base.take_fault()
        paced = own is not None and (name, model) in self.paced_models
        return fault, own.pacing if paced and own is not None else base.pacing

    def _own(self, endpoint: Endpoint, model: str | None) -> EndpointBehaviour:
        if model is None:
            return self.endpoint(endpoint)
        return self.per_model.setdefault((endpoint, model), EndpointBehaviour())

    def inject(
        self, endpoint: Endpoint, fault: Fault | str, count: int = 1, *, model: str | None = None
    ) -> None:
        """Makes the next ``count`` requests to ``endpoint`` fail with ``fault`` (``count=-1``: all).

        With ``model`` only requests naming that model fail; the others keep the endpoint's behaviour.
        """
        target = self._own(endpoint, model)
        target.fault = Fault(fault)
        target.fault_remaining = count

    def clear_faults(self) -> None:
        for name in ("stt", "chat", "tts", "realtime"):
            self.endpoint(name).fault = None
        for behaviour in self.per_model.values():
            behaviour.fault = None

    def pace(
        self, endpoint: Endpoint, *, ttfb_ms: float = 0.0, per_token_ms: float = 0.0, model: str | None = None
    ) -> None:
        self._own(endpoint, model).pacing = Pacing(ttfb_ms, per_token_ms)
        if model is not None:
            self.paced_models.add((endpoint, model))

    def next_transcript(self) -> str:
        return self.transcripts.popleft() if self.transcripts else self.default_transcript

    def transcript_for(self, wav: bytes | None) -> str:
        """The words of the registered clips in ``wav``; otherwise the next queued or default transcript."""
        if self.clips and wav:
            heard = self.clips.transcribe_wav(wav)
            if heard is not None:
                return heard
        return self.next_transcript()

    def next_reply(self) -> FakeReply:
        return self.replies.popleft() if self.replies else self.default_reply

    def requests_to(self, endpoint: Endpoint) -> list[RecordedRequest]:
        return [r for r in self.requests if r.endpoint == endpoint]

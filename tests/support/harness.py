"""A real call session on an in-memory wire, with chaos on tap: for never-silent properties.

The session, machine, detector, voice and jobs are the product's; only what lies beyond the call's edge is
played here: the wire (marks echoed as soon as sent, unless told to lose one), the phone control, and the
engines, which answer at once with a tone and can be told to raise at one stage. Caller audio is German
speech fed frame by frame on the detector's stream clock; the test waits for events, never for time.

``strict()`` is the whole-call check: no invalid trigger, no ``CallError`` the test did not expect, no task
left behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from dialogue.config import CallDeps, SessionConfig
from dialogue.events import CallEvent
from dialogue.llm import Message, ReplyPart, TextDelta, ToolCall, ToolSpec
from dialogue.phrases import german_catalogue
from dialogue.session import CallSession
from dialogue.tools import Tool, ToolRegistry
from media.speech import Transcript, Utterance
from media.transport import StreamStart
from media.turns import TurnConfig
from tests.support.audio import frames, silence_ulaw

TONE = bytes(range(0x10, 0x70)) * 20
"""About 240 ms of audible μ-law: the content does not matter, only that it is bot audio."""
REPLY = "Wir haben montags bis freitags von acht bis achtzehn Uhr geöffnet. Kann ich sonst helfen?"
CATALOGUE = german_catalogue("Stadtwerke Musterstadt")


class Chaos:
    """Which stage raises next; each armed stage raises once (``RuntimeError``, not a provider error).

    A stage may also be held: it waits until the test opens its gate (a provider that hangs).
    """

    def __init__(self) -> None:
        self.armed: dict[str, int] = {}
        self.raises: dict[str, Exception] = {}
        self.struck: list[str] = []
        self.gates: dict[str, asyncio.Event] = {}

    def hold(self, stage: str) -> asyncio.Event:
        self.gates[stage] = asyncio.Event()
        return self.gates[stage]

    async def gate(self, stage: str) -> None:
        if stage in self.gates:
            await self.gates[stage].wait()

    def arm(self, stage: str, times: int = 1, *, exc: Exception | None = None) -> None:
        self.armed[stage] = times
        if exc is not None:
            self.raises[stage] = exc

    def strike(self, stage: str) -> None:
        if self.armed.get(stage, 0) > 0:
            self.armed[stage] -= 1
            self.struck.append(stage)
            raise self.raises.get(stage) or RuntimeError(f"chaos in {stage}")


@dataclass
class Wire:
    """The far end: takes audio, echoes marks at once (fast-forwarded playback), can lose or stall."""

    chaos: Chaos
    session: CallSession | None = None
    audio: bytearray = field(default_factory=bytearray)
    marks: list[str] = field(default_factory=list)
    clears: int = 0
    lose_marks: int = 0
    stall: asyncio.Event | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def send_audio(self, ulaw: bytes) -> None:
        self.chaos.strike("playout")
        if self.stall is not None:
            await self.stall.wait()
        self.audio += ulaw
        self.changed.set()

    async def send_mark(self, name: str) -> None:
        self.marks.append(name)
        if self.lose_marks:
            self.lose_marks -= 1
        elif self.session is not None:
            await self.session.on_mark(name)
        self.changed.set()

    async def clear(self) -> None:
        self.clears += 1

    async def close(self) -> None:
        return None


class Control:
    def __init__(self) -> None:
        self.hangups = 0

    async def hangup(self, call_sid: str) -> None:
        self.hangups += 1

    async def transfer(self, call_sid: str, number: str) -> bool:
        return False


@dataclass
class Engines:
    chaos: Chaos
    tool_calls: list[str] = field(default_factory=list)
    """Tools the next reply calls before it speaks."""
    name: str = "harness"
    cache_key: str = "harness"

    async def transcribe(self, utterance: Utterance) -> Transcript:
        await self.chaos.gate("stt")
        self.chaos.strike("stt")
        return Transcript(text="Wann haben Sie geöffnet?", language="de")

    async def stream_reply(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> AsyncIterator[ReplyPart]:
        if self.tool_calls and messages[-1].role != "tool":
            for n, name in enumerate(self.tool_calls):
                yield ToolCall(id=f"call_{n}", name=name, arguments={})
            return
        await self.chaos.gate("llm")
        first, rest = REPLY.split(". ", 1)
        word, rest = rest.split(" ", 1)
        yield TextDelta(first + ". ")
        yield TextDelta(word + " ")  # the first sentence is complete only once the next one begins
        self.chaos.strike("llm")
        yield TextDelta(rest)

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        self.chaos.strike("tts")
        yield TONE


@dataclass
class Harness:
    session: CallSession
    wire: Wire
    chaos: Chaos
    engines: Engines
    events: list[CallEvent]
    expected_errors: set[str] = field(default_factory=set)

    def of(self, kind: str) -> list[Any]:
        return [e for e in self.events if e.kind == kind]

    async def until(self, predicate: Callable[[], bool], *, guard_s: float = 10.0) -> None:
        """Waits until ``predicate`` holds, looking again after every wire message and every call event.

        ``guard_s`` only stops a broken test from hanging; nothing is asserted about time.
        """
        async with asyncio.timeout(guard_s):
            while not predicate():
                self.wire.changed.clear()
                await self.wire.changed.wait()

    async def say(self, ulaw: bytes, *, silence_ms: int = 700) -> None:
        """The caller speaks, then stays silent long enough for the end of the turn."""
        for frame in frames(ulaw + silence_ulaw(silence_ms)):
            self.session.on_audio(frame)
            await asyncio.sleep(0)  # as a socket would: other tasks of the call run between frames

    def strict(self) -> None:
        machine = self.session.machine
        assert machine.invalid_triggers == 0, machine.counters.invalid
        unexpected = [e for e in self.of("error") if e.stage not in self.expected_errors]
        assert not unexpected, unexpected
        assert self.session.active_tasks() == 0


@asynccontextmanager
async def call(*, echo_slack_s: float = 0.3, **config: Any) -> AsyncIterator[Harness]:
    chaos = Chaos()
    engines = Engines(chaos)
    wire = Wire(chaos)
    events: list[CallEvent] = []
    tools = ToolRegistry()

    async def lookup(_args: object) -> str:
        chaos.strike("tool")
        return "Geöffnet Mo-Fr 8-18 Uhr."

    tools.register(Tool(ToolSpec("lookup", "Öffnungszeiten nachschlagen"), lookup))
    catalogue = dict.fromkeys(_lines(), TONE)
    deps = CallDeps(
        stt=engines,
        llm=engines,
        tts=engines,
        lines=CATALOGUE,
        system_prompt="Test",
        cached_audio=catalogue.get,
        tools=tools,
    )
    session_config = SessionConfig(
        turn=TurnConfig(), playout_lead_ms=600_000, reprompt_after_s=600, echo_slack_s=echo_slack_s, **config
    )

    class Sink:
        def publish(self, event: CallEvent) -> None:
            events.append(event)
            wire.changed.set()

    session = CallSession(
        start=StreamStart("CA-harness", "MZ-harness"),
        transport=wire,
        control=Control(),
        deps=deps,
        config=session_config,
        sink=Sink(),
    )
    wire.session = session
    harness = Harness(session, wire, chaos, engines, events)
    await session.on_start(StreamStart("CA-harness", "MZ-harness"))
    try:
        yield harness
    finally:
        await session.hangup("test_over")
    harness.strict()


def _lines() -> list[str]:
    c = CATALOGUE
    return [
        c.greeting,
        *c.reprompts,
        c.goodbye,
        c.goodbye_silence,
        c.stt_fallback,
        c.llm_fallback,
        c.handover,
    ]

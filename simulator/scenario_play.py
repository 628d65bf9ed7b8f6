"""Playing a tester's scenario as one real phone call: Twilio Media Streams over a WebSocket, in real time.

Real time because a scenario's expectations are about timing (answer latency, a ``clear`` after a
barge-in, "at 600 ms into the answer"); the shipped suite stays short by running its calls concurrently
against one bot instead. The caller waits on awaited events of the wire (first audio, clear, close), never
on sleeps; the bot's own events come from ``BotView`` when the bot runs in this process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from simulator.call import CallRefused, place_call
from simulator.caller import Caller, FrameClock
from simulator.caller_audio import Speech, WavError, load_wav, speech_ulaw
from simulator.scenario_checks import Check, StepOutcome, judge
from simulator.scenario_spec import Expect, Scenario, Step
from simulator.twilio import ConnectRejected

QUIET_S = 0.8
"""The bot has finished talking when nothing new arrived for this long after its audio played out."""
NO_ANSWER_WINDOW_S = 2.5
"""How long "the bot does not answer" is watched: end of turn + STT + LLM + TTS with a margin."""


class BotView(Protocol):
    """What an in-process bot shows beyond the wire: its events, and the fake STT's ear."""

    def events_since(self, call_sid: str, since: float) -> list[Any]:
        """The call's events that arrived at or after ``since`` (``time.monotonic``)."""

    def register_clip(self, text: str, ulaw: bytes) -> None:
        """So the fake transcriber answers with ``text`` when it hears ``ulaw``."""

    async def wait_ended(self, call_sid: str, timeout_s: float) -> None:
        """Returns once the call's ``call_ended`` event arrived (or after ``timeout_s``)."""


@dataclass(slots=True)
class ScenarioResult:
    scenario: Scenario
    steps: list[StepOutcome] = field(default_factory=list)
    error: str | None = None
    call_sid: str = ""
    seconds: float = 0.0
    greeting_ms: float | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None or any(not s.passed for s in self.steps)

    @property
    def status(self) -> str:
        """pass, fail, xfail (failed as the file said it would) or xpass (its xfail reason is gone)."""
        if self.scenario.xfail:
            return "xfail" if self.failed else "xpass"
        return "fail" if self.failed else "pass"

    @property
    def ok(self) -> bool:
        """What CI accepts: anything but an undeclared failure (an XPASS is reported, not failed)."""
        return self.status != "fail"


Progress = Callable[[str], None]


def render(scenario: Scenario, on_clip: Callable[[str, bytes], None] | None) -> dict[int, Speech]:
    """The caller's audio per step, rendered before the call rings (eSpeak or WAV), clips registered."""
    audio: dict[int, Speech] = {}
    for i, step in enumerate(scenario.steps):
        if step.action == "say":
            ulaw = speech_ulaw(step.text)
        elif step.action == "wav" and step.wav is not None:
            ulaw = load_wav(step.wav, level_db=-20.0)
        else:
            continue
        audio[i] = Speech.of(ulaw)
        if on_clip is not None and step.text:
            on_clip(step.text, ulaw)
    return audio


async def play(
    scenario: Scenario,
    base_url: str,
    *,
    view: BotView | None = None,
    public_url: str | None = None,
    auth_token: str | None = None,
    progress: Progress | None = None,
    fast_forward: bool = False,
    on_clip: Callable[[str, bytes], None] | None = None,
) -> ScenarioResult:
    """``fast_forward``: once an answer has started, play the rest of it out at once instead of listening in
    real time (only for a bot that sends its audio ahead, i.e. a large ``PLAYOUT_LEAD_MS``: in-process runs).
    Answers the next step talks over still play in real time, so ``while_bot_speaks_ms`` keeps its meaning.
    ``on_clip`` gets each rendered sentence (default: ``view.register_clip``): for a bot on one's own fakes.
    """
    result = ScenarioResult(scenario)
    started = time.monotonic()
    say = progress or (lambda _line: None)
    try:
        audio = render(scenario, on_clip or (view.register_clip if view is not None else None))
    except (WavError, OSError, RuntimeError) as exc:
        result.error = f"caller audio: {exc}"
        return result
    clock = FrameClock()
    try:
        async with place_call(base_url, public_url=public_url, auth_token=auth_token) as sim:
            result.call_sid = sim.call_sid
            caller = Caller(sim, clock)
            caller.begin_streaming()
            rang = time.monotonic()
            if not await caller.until(lambda: caller.closed or caller.record.audio_messages > 0, 10.0):
                result.error = "no greeting within 10 s"
                return result
            result.greeting_ms = (time.monotonic() - rang) * 1000
            await listen_to_end(caller, fast_forward)
            player = Player(caller, view, scenario.reply_timeout_s, fast_forward=fast_forward)
            for i, step in enumerate(scenario.steps):
                nxt = scenario.steps[i + 1] if i + 1 < len(scenario.steps) else None
                barge_next = nxt is not None and nxt.while_bot_speaks_ms is not None
                out = await player.run(i + 1, step, audio.get(i), barge_next=barge_next)
                out.checks = judge(out)
                result.steps.append(out)
                mark = "ok" if out.passed else "FAIL"
                say(f"{scenario.name}: step {i + 1}/{len(scenario.steps)} {step.describe()} … {mark}")
            if sim.record.violations:
                result.error = "protocol breaches by the bot: " + "; ".join(sim.record.violations[:3])
    except (CallRefused, ConnectRejected, OSError) as exc:
        result.error = f"could not place the call: {exc}"
    finally:
        await clock.close()
        result.seconds = time.monotonic() - started
    return result


class Player:
    """Plays one step at a time on a connected call and records what it observed (``StepOutcome``)."""

    def __init__(
        self,
        caller: Caller,
        view: BotView | None,
        reply_timeout_s: float = 10.0,
        *,
        fast_forward: bool = False,
    ) -> None:
        self.caller = caller
        self.fast_forward = fast_forward
        self.view = view
        self.reply_timeout_s = reply_timeout_s
        self.answer_started_at: float | None = None
        """When the bot's current answer started reaching the caller (anchor of ``while_bot_speaks_ms``)."""

    async def run(self, index: int, step: Step, speech: Speech | None, *, barge_next: bool) -> StepOutcome:
        """``barge_next``: the next step talks over this answer, so stop watching once the answer starts."""
        caller = self.caller
        out = StepOutcome(step, index)
        t0 = time.monotonic()
        clears0 = len(caller.record.clears)
        if step.action in ("say", "wav"):
            assert speech is not None, "say and wav steps need their rendered speech"
            await self._say(step, speech, out, barge_next)
        elif step.action == "pause_ms":
            seen = caller.record.audio_messages
            await caller.pause(step.ms / 1000)
            out.answered = caller.record.audio_messages > seen
        elif step.action == "silence_s":
            await caller.pause(step.ms / 1000)
            if step.expect.ended or step.expect.transferred:
                await caller.until(lambda: caller.closed, 5.0)
        elif step.action == "dtmf":
            await self._dtmf(step, out, barge_next)
        else:
            await caller.sim.hang_up()
        if (step.expect.ended or step.expect.transferred) and not caller.closed:
            await caller.until(lambda: caller.closed, self.reply_timeout_s)
        out.closed = caller.closed
        out.new_clears = len(caller.record.clears) - clears0
        if self.view is not None:
            if caller.closed:  # the call-ended event follows the socket's close by a moment
                await self.view.wait_ended(caller.sim.call_sid, 2.0)
            out.events = self._events(t0)
        return out

    def _events(self, since: float) -> list[Any]:
        assert self.view is not None
        return self.view.events_since(self.caller.sim.call_sid, since)

    async def _say(self, step: Step, speech: Speech, out: StepOutcome, barge_next: bool) -> None:
        caller = self.caller
        out.caller_said = step.text or str(step.wav)
        if step.while_bot_speaks_ms is not None:
            if not caller.playout.playing:
                await caller.until(lambda: caller.closed or caller.playout.playing, self.reply_timeout_s)
                self.answer_started_at = time.monotonic()
            if not caller.playout.playing:
                out.problems.append("the bot was not talking when the caller was to speak over it")
            anchor = self.answer_started_at or time.monotonic()
            wait = anchor + step.while_bot_speaks_ms / 1000 - time.monotonic()
            if wait > 0.02:
                await caller.pause(wait)
        utt = await caller.say(speech)
        if step.expect == Expect():
            return  # nothing to watch: the caller goes on (e.g. the next part of a dictated number)
        if step.expect.no_answer:
            await caller.until(lambda: caller.closed, NO_ANSWER_WINDOW_S)
            out.answered = utt.first_audio_at is not None and not utt.over_bot_audio
        else:
            await caller.until(lambda: caller.closed or utt.first_audio_at is not None, self.reply_timeout_s)
            out.answered = utt.first_audio_at is not None
        if utt.first_audio_at is not None:
            self.answer_started_at = utt.first_audio_at
        lat = utt.response_latency
        out.latency_ms = None if lat is None else lat * 1000
        if utt.clear_at is not None:
            out.clear_ms = (utt.clear_at - utt.started_at) * 1000
        elif utt.over_bot_audio and step.expect.clear_within_ms is not None:
            await caller.until(
                lambda: caller.closed or utt.clear_at is not None, step.expect.clear_within_ms / 1000
            )
            if utt.clear_at is not None:
                out.clear_ms = (utt.clear_at - utt.started_at) * 1000
        if not barge_next:
            await listen_to_end(caller, self.fast_forward)

    async def _dtmf(self, step: Step, out: StepOutcome, barge_next: bool) -> None:
        caller = self.caller
        seen = caller.record.audio_messages
        sent = await caller.press(step.digit)
        out.caller_said = f"DTMF {step.digit}"
        if (
            await caller.until(
                lambda: caller.closed or caller.record.audio_messages > seen, self.reply_timeout_s
            )
            and caller.record.audio_messages > seen
        ):
            self.answer_started_at = time.monotonic()
            out.latency_ms = (self.answer_started_at - sent) * 1000
            out.answered = True
        if not barge_next:
            await listen_to_end(caller, self.fast_forward)


async def listen_to_end(caller: Caller, fast_forward: bool) -> bool:
    """Until the bot has finished talking; fast-forwarded, each stretch of its audio is played out at once."""
    if not fast_forward:
        return await caller.listen_to_end(QUIET_S, 60.0)
    sim = caller.sim
    deadline = time.monotonic() + 60.0
    while not caller.closed and time.monotonic() < deadline:
        await sim.play_out(timeout_s=max(0.1, deadline - time.monotonic()))
        seen = caller.record.audio_messages
        await caller.until(lambda: caller.closed or caller.record.audio_messages != seen, QUIET_S)  # noqa: B023
        if caller.record.audio_messages == seen:
            return not caller.closed
    return False


def step_checks(result: ScenarioResult) -> list[tuple[StepOutcome, Check]]:
    return [(s, c) for s in result.steps for c in s.checks]

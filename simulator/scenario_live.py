"""A scenario written as Python: a caller whose every step is checked at once, with a readable failure.

The same steps and expectations as the YAML files (``simulator.scenario_spec``), for testers who prefer a
test function::

    async def test_saturday(voice_caller):
        await voice_caller.say("Wann haben Sie samstags geöffnet?", says=["samstags"], answer_within_ms=2000)
        await voice_caller.dtmf("0", transferred=True)

A failed step raises ``AssertionError`` naming the step, each failed expectation and what the bot said.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from simulator.call import place_call
from simulator.caller import Caller, FrameClock
from simulator.caller_audio import Speech, load_wav, speech_ulaw
from simulator.scenario_checks import StepOutcome, judge
from simulator.scenario_play import BotView, Player, listen_to_end
from simulator.scenario_spec import ScenarioError, Step, _expect


def explain(out: StepOutcome) -> str:
    lines = [f"step {out.index} ({out.step.describe()}) failed:"]
    lines += [f"  ✗ {c.name}: {c.detail}" for c in out.failures()]
    if out.latency_ms is not None:
        lines.append(f"  answer latency: {out.latency_ms:.0f} ms")
    return "\n".join(lines)


class LiveCaller:
    """One connected call; each method plays a step, checks its expectations and returns the outcome."""

    def __init__(
        self, caller: Caller, view: BotView | None, reply_timeout_s: float, fast_forward: bool = False
    ) -> None:
        self._caller = caller
        self._view = view
        self._player = Player(caller, view, reply_timeout_s, fast_forward=fast_forward)
        self.outcomes: list[StepOutcome] = []

    @property
    def call_sid(self) -> str:
        return self._caller.sim.call_sid

    @property
    def closed(self) -> bool:
        return self._caller.closed

    async def say(
        self,
        text: str,
        *,
        while_bot_speaks_ms: int | None = None,
        then_interrupt: bool = False,
        **expect: Any,
    ) -> StepOutcome:
        """``then_interrupt``: the next step talks over this answer, so return once the answer starts."""
        ulaw = speech_ulaw(text)
        if self._view is not None:
            self._view.register_clip(text, ulaw)
        step = Step("say", text=text, while_bot_speaks_ms=while_bot_speaks_ms)
        return await self._run(step, Speech.of(ulaw), expect, then_interrupt)

    async def say_wav(
        self, path: Path, *, words: str = "", then_interrupt: bool = False, **expect: Any
    ) -> StepOutcome:
        ulaw = load_wav(path, level_db=-20.0)
        if self._view is not None and words:
            self._view.register_clip(words, ulaw)
        step = Step("wav", text=words, wav=path)
        return await self._run(step, Speech.of(ulaw), expect, then_interrupt)

    async def pause(self, ms: int, **expect: Any) -> StepOutcome:
        return await self._run(Step("pause_ms", ms=ms), None, expect, False)

    async def silence(self, seconds: float, **expect: Any) -> StepOutcome:
        return await self._run(Step("silence_s", ms=int(seconds * 1000)), None, expect, False)

    async def dtmf(self, digit: str, *, then_interrupt: bool = False, **expect: Any) -> StepOutcome:
        return await self._run(Step("dtmf", digit=digit), None, expect, then_interrupt)

    async def hang_up(self, **expect: Any) -> StepOutcome:
        return await self._run(Step("hangup"), None, expect, False)

    async def _run(
        self, step: Step, speech: Speech | None, expect: dict[str, Any], barge: bool
    ) -> StepOutcome:
        index = len(self.outcomes) + 1
        try:
            step = replace(step, expect=_expect(expect, f"step {index}"))
        except ScenarioError as exc:
            raise TypeError(str(exc)) from None
        out = await self._player.run(index, step, speech, barge_next=barge)
        out.checks = judge(out)
        self.outcomes.append(out)
        if not out.passed:
            raise AssertionError(explain(out))
        return out


@asynccontextmanager
async def live_call(
    base_url: str,
    *,
    view: BotView | None = None,
    public_url: str | None = None,
    auth_token: str | None = None,
    reply_timeout_s: float = 10.0,
    wait_greeting: bool = True,
    fast_forward: bool = False,
) -> AsyncIterator[LiveCaller]:
    """Rings the bot, listens to the whole greeting (unless ``wait_greeting`` is false), yields the caller."""
    clock = FrameClock()
    try:
        async with place_call(base_url, public_url=public_url, auth_token=auth_token) as sim:
            caller = Caller(sim, clock)
            caller.begin_streaming()
            if wait_greeting:
                if not await caller.until(lambda: caller.closed or caller.record.audio_messages > 0, 10.0):
                    raise AssertionError("the bot did not greet within 10 s")
                await listen_to_end(caller, fast_forward)
            yield LiveCaller(caller, view, reply_timeout_s, fast_forward)
    finally:
        await clock.close()

"""A deliberately broken bot makes the right steps of a shipped scenario fail, with a message saying why."""

from __future__ import annotations

from pathlib import Path

import pytest

from fakes.behaviour import FakeBehaviour, FakeReply, Fault
from simulator.scenario_live import live_call
from simulator.scenario_play import play
from simulator.scenario_spec import load_scenario
from web.scenario_bot import scenario_bot

SUITE = Path(__file__).resolve().parents[2] / "scenarios"


async def test_an_off_topic_language_model_fails_the_content_check() -> None:
    behaviour = FakeBehaviour(default_reply=FakeReply("Morgen wird es sonnig und warm."))
    scenario = load_scenario(SUITE / "opening_hours.yaml")
    async with scenario_bot(behaviour=behaviour, llm_provider="openai") as bot:
        result = await play(
            scenario,
            bot.base_url,
            view=bot,
            public_url=bot.public_url,
            auth_token=bot.auth_token,
            fast_forward=True,
        )
    assert result.status == "fail"
    first = result.steps[0]
    assert [c.name for c in first.failures()] == ["says"]
    detail = first.failures()[0].detail
    assert "missing 'samstags', 'neun bis dreizehn Uhr'" in detail
    assert "the bot said: 'Morgen wird es sonnig und warm.'" in detail


async def test_a_hung_tts_fails_the_latency_budget() -> None:
    behaviour = FakeBehaviour()
    async with (
        scenario_bot(behaviour=behaviour) as bot,
        live_call(
            bot.base_url, view=bot, public_url=bot.public_url, auth_token=bot.auth_token, fast_forward=True
        ) as caller,
    ):
        behaviour.inject("tts", Fault.TIMEOUT, count=-1)  # after the greeting: every sentence hangs
        with pytest.raises(AssertionError) as err:
            await caller.say("Wann haben Sie am Samstag geöffnet?", answer_within_ms=1500, says=["samstags"])
    message = str(err.value)
    assert message.startswith('step 1 ("Wann haben Sie am Samstag geöffnet?") failed:')
    assert "✗ answer_within_ms: answered after" in message
    assert "(budget 1500 ms)" in message
    assert "says" not in message  # the backup voice still said the right thing

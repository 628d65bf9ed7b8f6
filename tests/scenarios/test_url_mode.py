"""``--url``: against a bot whose events this process cannot see, only the wire is judged."""

from __future__ import annotations

from pathlib import Path

from simulator.scenario_checks import NO_EVENTS
from simulator.scenario_spec import load_scenario
from web.scenario_bot import scenario_bot
from web.scenario_runner import run_against_url

SUITE = Path(__file__).resolve().parents[2] / "scenarios"


async def test_wire_checks_run_and_event_checks_are_skipped_with_a_reason() -> None:
    scenario = load_scenario(SUITE / "opening_hours.yaml")
    async with scenario_bot(playout_lead_ms=200) as bot:  # as `voicebot serve` paces its audio
        (result,) = await run_against_url(
            [scenario],
            bot.base_url,
            public_url=bot.public_url,
            auth_token=bot.auth_token,
            on_clip=bot.register_clip,  # the fake STT still hears the sentences; nothing else is seen
        )
    assert result.status == "pass", [(s.index, s.failures()) for s in result.steps]
    first = {c.name: c for c in result.steps[0].checks}
    assert first["answer_within_ms"].ok is True
    assert first["says"].ok is None
    assert first["says"].detail == NO_EVENTS
    assert first["states"].ok is None
    last = {c.name: c for c in result.steps[-1].checks}
    assert last["ended"].ok is True

"""The pytest plugin's fixtures as a tester uses them: a bot on the fakes, a caller checking each step."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from simulator.scenario_live import LiveCaller
from simulator.scenario_play import ScenarioResult
from web.scenario_bot import ScenarioBot

SUITE = Path(__file__).resolve().parents[2] / "scenarios"


async def test_the_plugin_caller_reads_like_the_yaml(voice_caller: LiveCaller) -> None:
    """The issue's own example: opening hours on Saturday, interrupting, then a human by key."""
    await voice_caller.say(
        "Wann haben Sie am Samstag geöffnet?", says=["samstags"], no_fallback=True, then_interrupt=True
    )
    await voice_caller.say("Danke, das genügt.", while_bot_speaks_ms=1200, clear_within_ms=2500)
    await voice_caller.dtmf("0", says=["Mitarbeiter"], transferred=True)
    assert voice_caller.closed


async def test_a_failed_plugin_step_says_what_the_bot_said(voice_caller: LiveCaller) -> None:
    with pytest.raises(AssertionError) as err:
        await voice_caller.say("Wann haben Sie am Samstag geöffnet?", says=["Weihnachten"])
    assert "✗ says: missing 'Weihnachten'; the bot said: 'Unser Kundenzentrum ist" in str(err.value)


async def test_a_recorded_caller_from_a_wav_file_is_heard(voice_caller: LiveCaller, tmp_path: Path) -> None:
    import wave

    from media.codec import ulaw_to_array
    from simulator.caller_audio import speech_ulaw

    path = tmp_path / "caller.wav"
    with wave.open(str(path), "wb") as w:  # 16-bit 8 kHz, as a tester's recording might be
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(
            ulaw_to_array(speech_ulaw("Wann haben Sie am Samstag geöffnet?")).astype("<i2").tobytes()
        )
    out = await voice_caller.say_wav(path, words="Wann haben Sie am Samstag geöffnet?", says=["samstags"])
    assert out.latency_ms is not None


@pytest.mark.voice_bot_settings(reprompt_after_s=2)
async def test_the_settings_marker_reaches_the_bot(voice_bot: ScenarioBot) -> None:
    assert voice_bot.settings.reprompt_after_s == 2


async def test_run_scenario_plays_a_file_on_its_own_bot(
    run_scenario: Callable[[Path], Awaitable[ScenarioResult]],
) -> None:
    result = await run_scenario(SUITE / "dtmf_human.yaml")
    assert result.status == "pass"

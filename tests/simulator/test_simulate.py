"""The load simulator's own behaviour against a tiny scripted peer: timing, clear, arithmetic, the command."""

from __future__ import annotations

import asyncio
import json
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from simulator import wire
from simulator.caller_audio import _MEDIA, Speech, load_wav
from simulator.load import CallResult, LoadConfig, run_load
from simulator.playout import Gap, Playout, SimClock
from simulator.record import Utterance, underruns
from simulator.report import percentile, summarize
from simulator.scenarios import ScenarioConfig
from tests.simulator import scripted
from web.cli import main

TONE = bytes(range(0x10, 0x70)) * 10  # 960 bytes: 120 ms of "speech" (6 frames)


@pytest.fixture(scope="module")
def peer() -> Iterator[str]:
    with scripted.scripted_server() as url:
        yield url


# --- pure arithmetic ------------------------------------------------------------------------------------


def test_media_template_is_what_the_wire_module_sends() -> None:
    payload = "/w=="
    ours = _MEDIA % (7, 3, 40, payload, "MZ1")
    theirs = wire.media(7, stream_sid="MZ1", chunk=3, timestamp_ms=40, ulaw=b"\xff")
    assert json.loads(ours) == json.loads(theirs)
    assert ours == theirs


def test_percentiles_interpolate_between_ranks() -> None:
    assert percentile([], 50) is None
    assert percentile([5.0], 95) == 5.0
    values = [float(x) for x in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 95) == pytest.approx(95.05)
    assert percentile(values, 100) == 100.0


def test_summary_subtracts_the_overhead_base() -> None:
    calls = [
        CallResult(0, "turns", response_latencies=[1.31, 1.32], barge_in_reactions=[0.82], underruns=[0.05]),
        CallResult(1, "turns", error="refused: HTTP 200", violations=["binary frame"]),
    ]
    s = summarize(calls, overhead_base_ms=1300)
    assert s["calls"] == 2
    assert s["failed_calls"] == 1
    assert s["protocol_errors"] == 1
    assert s["response_latency_ms"]["n"] == 2
    assert s["overhead_ms"]["p50"] == pytest.approx(15.0)
    assert s["overhead_ms"]["max"] == pytest.approx(20.0)
    assert s["barge_in_reaction_ms"]["p95"] == pytest.approx(820.0)
    assert (s["underruns"], s["underrun_ms_total"]) == (1, 50.0)


def frozen() -> float:
    """Real time standing still: the playback model moves only by the test's skips."""
    return 1000.0


def test_playout_records_gaps_and_forgets_them_across_a_clear() -> None:
    clock = SimClock(frozen)
    out = Playout(clock)
    out.add_audio(b"\x00" * 800)  # 100 ms
    clock.skip(0.15)
    out.add_audio(b"\x00" * 800)  # ran dry 50 ms ago: a gap inside the segment
    out.add_mark("t1-1")
    clock.skip(0.3)
    out.add_audio(b"\x00" * 800)  # after mark t1-1, before t1-2: same reply
    out.add_mark("t1-2")
    out.clear()
    clock.skip(1.0)
    out.add_audio(b"\x00" * 800)  # a new reply after a clear: no gap
    assert [round(g.seconds, 2) for g in out.gaps] == [0.05, 0.2]
    assert (out.gaps[0].mark_before, out.gaps[0].mark_after) == (None, "t1-1")
    assert (out.gaps[1].mark_before, out.gaps[1].mark_after) == ("t1-1", "t1-2")


def test_underruns_are_mid_reply_gaps_not_pauses_between_replies_or_for_the_caller() -> None:
    now = time.monotonic()
    mid_segment = Gap(0.05, now, None, "t1-1")
    same_reply = Gap(0.2, now, "t1-1", "t1-2")
    next_reply = Gap(3.0, now, "t1-2", "t2-3")
    jitter = Gap(0.005, now, None, None)
    paused_for_caller = Gap(0.4, now + 10, None, "t3-4")
    caller = Utterance(started_at=now + 9.5, ended_at=now + 9.7, over_bot_audio=True)
    found = underruns([mid_segment, same_reply, next_reply, jitter, paused_for_caller], [caller])
    assert found == [mid_segment, same_reply]


def _write_wav(path: Path, samples: np.ndarray, rate: int, channels: int = 1) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())


def test_wav_input_is_resampled_mixed_down_and_trimmed_to_the_voiced_part(tmp_path: Path) -> None:
    rate = 16000
    t = np.arange(rate) / rate  # 1 s of 300 Hz tone between 0.5 s of silence either side
    tone = np.sin(2 * np.pi * 300 * t) * 8000
    mono = np.concatenate([np.zeros(rate // 2), tone, np.zeros(rate // 2)])
    _write_wav(tmp_path / "stereo.wav", np.repeat(mono, 2), rate, channels=2)
    ulaw = load_wav(tmp_path / "stereo.wav")
    assert abs(len(ulaw) - 8000) <= 160  # 1 s at 8 kHz, the silence gone
    speech = Speech.of(ulaw)
    assert speech.seconds == pytest.approx(len(ulaw) / 8000, abs=0.02)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not a wav")
    with pytest.raises(ValueError, match="RIFF"):
        load_wav(bad)


# --- against the scripted peer, in real time ----------------------------------------------------------


@pytest.mark.realtime
async def test_turns_measure_latency_mark_echo_timing_and_underruns(peer: str) -> None:
    cfg = LoadConfig(
        peer,
        total_calls=1,
        scenario=ScenarioConfig("turns", utterances=(Speech.of(TONE),), pause_s=0.3, max_turns=2),
    )
    [result] = await run_load(cfg)
    assert result.error is None
    assert result.violations == []
    assert result.missing == []
    assert len(result.response_latencies) == 2
    # /voice was posted before the greeting's first audio arrived: the greeting latency is measured.
    assert result.greeting_latency is not None
    assert result.greeting_latency > 0
    assert result.to_json()["greeting_latency_ms"] == round(result.greeting_latency * 1000, 1)
    # Compared with what the peer really did (its sleeps may run late on a busy machine): a reply sent
    # ``delay`` after the peer saw the caller stop is heard more than ``delay`` after the last voiced
    # frame left (that frame was sent before the silent one the peer saw, the audio arrives after it was
    # sent), and less than a frame plus the way there and back later.
    sent = dict(scripted.SENT[result.call_sid])
    stops = [at for name, at in scripted.SENT[result.call_sid] if name == "caller-stopped"]
    delays = [sent[f"t{n}-1"] - stops[n - 1] for n in (1, 2)]
    for latency, delay in zip(result.response_latencies, delays, strict=True):
        assert delay < latency <= delay + 0.1
    # The second part followed the first by PART_S of audio plus a gap: the far end ran dry for that gap,
    # give or take the difference of the two parts' ways to the simulator.
    gaps = [sent[f"t{n}-2"] - sent[f"t{n}-1"] - scripted.PART_S for n in (1, 2)]
    assert len(result.underruns) == 2
    for underrun, gap in zip(result.underruns, gaps, strict=True):
        assert underrun == pytest.approx(gap, abs=0.03)
    assert result.marks == 5
    assert result.clears == 0


@pytest.mark.realtime
async def test_mark_is_echoed_when_playback_passes_it(peer: str) -> None:
    from simulator.call import place_call
    from simulator.caller import Caller, FrameClock

    clock = FrameClock()
    async with place_call(peer) as sim:
        caller = Caller(sim, clock)
        caller.begin_streaming()
        assert await caller.until(lambda: sim.record.echoed("greeting-1") is not None, 3)
        caller.stop_streaming()
    await clock.close()
    echo, first = sim.record.echoed("greeting-1"), sim.record.first_audio_at
    assert echo is not None
    assert first is not None
    assert not echo.flushed
    assert scripted.GREETING_S - 0.01 <= echo.at - first <= scripted.GREETING_S + 0.12
    assert sim.record.frames_sent >= 15  # silence streamed all along, 50 frames a second


async def test_speech_starts_when_its_first_frame_fell_due_even_if_the_simulator_sent_it_late(
    peer: str,
) -> None:
    """A simulator that falls behind must not shorten the bot's measured reaction by its own delay.

    No frame clock runs here: the test sends the frames itself, as the clock does when it catches up,
    with the first one due 100 ms before it leaves.
    """
    from simulator.call import place_call
    from simulator.caller import Caller, FrameClock
    from simulator.caller_audio import FRAME_S

    clock = FrameClock()
    speech = Speech.of(TONE)
    async with place_call(peer) as sim:
        caller = Caller(sim, clock)
        speaking = asyncio.create_task(caller.say(speech))
        await asyncio.sleep(0)  # one turn of the loop: ``say`` has queued the speech
        due = time.monotonic() - 0.1
        caller.next_frame_at = due
        for _ in speech.payloads:
            caller.next_frame_at += FRAME_S  # the clock moves on before it sends the frame that fell due
            assert await caller.send_next_frame()
        utterance = await speaking
    await clock.close()
    assert utterance.started_at == pytest.approx(due - FRAME_S, abs=1e-9)


@pytest.mark.realtime
async def test_bargein_measures_reaction_and_clear_flushes_pending_marks(peer: str) -> None:
    cfg = LoadConfig(
        peer,
        total_calls=1,
        scenario=ScenarioConfig(
            "bargein",
            utterances=(Speech.of(TONE),),
            interruption=Speech.of(TONE * 6),  # 720 ms, longer than the peer's BARGE_S
            interrupt_after_s=0.1,
            pause_s=0.3,
            max_turns=1,
        ),
    )
    [result] = await run_load(cfg)
    assert result.error is None, result
    assert result.missing == [], result
    [reaction] = result.barge_in_reactions
    # The frame timer may fire a little early; the arithmetic (onset = one frame before the first voiced
    # frame is sent) must still land within a frame of the peer's threshold.
    assert scripted.BARGE_S - 0.01 <= reaction <= scripted.BARGE_S + 0.1
    assert result.clears == 1
    assert len(result.response_latencies) == 2  # the question, then the interruption
    assert len(result.underruns) == 1  # only the reply listened to the end has its scripted gap


def test_simulate_command_runs_concurrent_calls_and_writes_json(peer: str, tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    result = CliRunner().invoke(
        main,
        [
            "simulate",
            "--url",
            peer,
            "--scenario",
            "dtmf",
            "--calls",
            "3",
            "--ramp-up",
            "0.3",
            "--duration",
            "1.5",
            "--digits",
            "1",
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "dtmf → audio" in result.output
    data = json.loads(out.read_text())
    assert data["summary"]["calls"] == 3
    assert data["summary"]["failed_calls"] == 0
    assert data["summary"]["dtmf_latency_ms"]["n"] >= 3
    assert {c["scenario"] for c in data["calls"]} == {"dtmf"}
    assert all(c["frames_sent"] > 0 for c in data["calls"])


def test_simulate_command_reports_a_refused_call(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["simulate", "--url", "http://127.0.0.1:9", "--scenario", "silence", "--duration", "0.2", "--quiet"],
    )
    assert result.exit_code == 1
    assert "1 failed" in result.output

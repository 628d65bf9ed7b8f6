"""The browser-call island against a stand-in call session: what it sends is what Twilio sends.

A 1 kHz tone plays as the microphone; the session must receive 20 ms μ-law frames at 8 kHz carrying that
tone (so capture, filtering, resampling and encoding are right), its own audio must be played in the page,
and its mark must come back only once that audio has been heard.
"""

from __future__ import annotations

import asyncio
import time
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from playwright.async_api import async_playwright

from media.codec import array_to_ulaw, ulaw_to_array
from media.transport import CallControl, CallTransport, StreamStart
from tests.console.browser import PASSWORD, launch, require_chromium, wait_js
from tests.support.server import run_app
from web.app import create_app
from web.settings import Settings

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]

BOT_AUDIO_S = 1.0


@dataclass
class StandIn:
    transport: CallTransport
    start: StreamStart | None = None
    audio: bytearray = field(default_factory=bytearray)
    frame_sizes: set[int] = field(default_factory=set)
    marks: list[tuple[str, float]] = field(default_factory=list)
    mark_sent_at: float = 0.0
    stopped: str = ""
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    async def on_start(self, start: StreamStart) -> None:
        self.start = start
        self.task = asyncio.create_task(self._speak())

    async def _speak(self) -> None:
        tone = 8000 * np.sin(2 * np.pi * 440 * np.arange(int(8000 * BOT_AUDIO_S)) / 8000)
        ulaw = array_to_ulaw(tone.astype(np.int16))
        for i in range(0, len(ulaw), 1600):  # sent faster than real time, as a TTS burst would be
            await self.transport.send_audio(ulaw[i : i + 1600])
        await self.transport.send_mark("greeting-end")
        self.mark_sent_at = time.monotonic()

    def on_audio(self, ulaw: bytes) -> None:
        self.frame_sizes.add(len(ulaw))
        self.audio += ulaw

    async def on_dtmf(self, digit: str) -> None:
        return None

    async def on_mark(self, name: str) -> None:
        self.marks.append((name, time.monotonic()))

    async def on_stop(self, reason: str) -> None:
        self.stopped = reason
        self.ended.set()


def tone_wav(path: Path, hz: float, seconds: float) -> Path:
    t = np.arange(int(48000 * seconds)) / 48000
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(48000)
        w.writeframes((6000 * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes())
    return path


@pytest.fixture
async def stand_in_app(tmp_path: Path) -> AsyncIterator[tuple[str, list[StandIn]]]:
    require_chromium()
    sessions: list[StandIn] = []

    def factory(transport: CallTransport, _control: CallControl, _start: StreamStart) -> StandIn:
        sessions.append(StandIn(transport))
        return sessions[-1]

    settings = Settings(stt_provider="none", data_dir=tmp_path, console_password=PASSWORD)
    async with run_app(create_app(settings, session_factory=factory)) as base:
        yield base, sessions


async def test_island_speaks_media_streams_plays_audio_and_echoes_marks_when_heard(
    stand_in_app: tuple[str, list[StandIn]], tmp_path: Path
) -> None:
    base, sessions = stand_in_app
    async with async_playwright() as pw:
        browser = await launch(pw, microphone_wav=tone_wav(tmp_path / "tone.wav", 1000, 6))
        page = await browser.new_page(base_url=base)
        await page.goto("/console/login")
        await page.fill("input[name=password]", PASSWORD)
        await page.click('form[action="/console/login"] button')
        await page.goto("/console/browser-call")
        call_sid = await page.get_attribute("#phone", "data-call-sid")
        await page.click("#call-start")
        await wait_js(page, "() => window.voicebotPhone.marksEchoed >= 1")
        await wait_js(page, "() => window.voicebotPhone.framesSent >= 100")
        played = await page.evaluate("window.voicebotPhone.framesPlayed")
        await page.click("#call-hangup")
        assert sessions, "the page never started a call"
        await sessions[0].ended.wait()  # the stop message (the test's timeout bounds its absence)
        await browser.close()

    [session] = sessions
    assert session.start is not None
    assert session.start.call_sid == call_sid
    assert session.start.transport == "browser"
    assert session.frame_sizes == {160}
    assert played >= BOT_AUDIO_S * 50 * 0.9
    [(name, heard_at)] = session.marks
    assert name == "greeting-end"
    assert heard_at - session.mark_sent_at > BOT_AUDIO_S * 0.8  # echoed when played, not when received
    assert session.stopped == "stop"

    samples = ulaw_to_array(bytes(session.audio[-8000:])).astype(np.float64)  # the last second
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    peak_hz = np.argmax(spectrum) * 8000 / len(samples)
    assert abs(peak_hz - 1000) < 20, peak_hz

"""End to end: the bot as a real server process on the provider fakes, driven from Chromium and the Twilio
simulator, watched through the console. These tests also take the README's screenshots.
"""

from __future__ import annotations

import json
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright

from fakes.behaviour import FakeBehaviour, FakeReply
from fakes.server import run_fake_providers
from simulator.call import place_call
from tests.console.browser import (
    RECORD_STATES,
    Bot,
    bot_process,
    launch,
    logged_in,
    require_chromium,
    screenshot,
    wait_js,
    write_caller_wav,
)
from tests.support.audio import german_speech_ulaw

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

PUBLIC_URL = "https://bot.example.com"
AUTH_TOKEN = "twilio-test-token"
LONG_REPLY = (
    "Gerne erkläre ich Ihnen das ausführlich. Unsere Servicezeiten sind montags bis freitags von acht bis "
    "achtzehn Uhr, samstags von neun bis vierzehn Uhr. An Feiertagen sind wir leider nicht erreichbar. "
    "Außerhalb dieser Zeiten können Sie uns jederzeit eine Nachricht hinterlassen."
)


@dataclass
class Stack:
    bot: Bot
    behaviour: FakeBehaviour
    tmp: Path


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    require_chromium()
    behaviour = FakeBehaviour()
    async with (
        run_fake_providers(behaviour) as fakes,
        bot_process(
            tmp_path, fakes, PUBLIC_URL=PUBLIC_URL, TWILIO_AUTH_TOKEN=AUTH_TOKEN, RECORD_CALLS="1"
        ) as bot,
    ):
        yield Stack(bot, behaviour, tmp_path)


async def text_of(page: Page, selector: str) -> str:
    return " ".join(await page.locator(selector).all_inner_texts())


async def test_call_the_bot_from_the_browser(stack: Stack) -> None:
    wav = write_caller_wav(
        stack.tmp / "caller.wav", "Ich möchte bitte meinen Zählerstand durchgeben.", lead_ms=9000
    )
    async with async_playwright() as pw:
        browser = await launch(pw, microphone_wav=wav)
        _, page = await logged_in(browser, stack.bot)
        await page.goto("/console/browser-call")
        call_sid = await page.get_attribute("#phone", "data-call-sid")
        assert call_sid is not None
        await page.evaluate(RECORD_STATES)
        await page.click("#call-start")

        await wait_js(page, "() => window.voicebotPhone.marksEchoed >= 1", 20)  # the greeting was played
        assert await page.evaluate("() => window.voicebotPhone.framesPlayed") > 25
        await page.locator(".turn.caller").first.wait_for(timeout=30_000)
        assert "Zählerstand" in await text_of(page, ".turn.caller")
        await page.locator(".latency-row").first.wait_for(timeout=20_000)
        await page.locator(".turn.bot:not(.pending)").first.wait_for(timeout=20_000)
        states: list[str] = await page.evaluate("() => window.__states")
        loop = ["listening", "transcribing", "thinking", "speaking"]
        assert any(states[i : i + 4] == loop for i in range(len(states))), states
        await screenshot(page, "browser-call.png")

        await page.click("#call-hangup")
        await page.locator("#download-recording").wait_for(timeout=10_000)
        await page.goto("/console")
        row = page.locator(f'#history tr[data-call="{call_sid}"]')
        await row.wait_for(timeout=10_000)
        await screenshot(page, "calls.png")
        await row.locator("a").click()
        assert "Zählerstand" in await text_of(page, ".turn.caller")

        async with page.expect_download() as download_info:
            await page.click("#download-recording")
        saved = stack.tmp / "recording.wav"
        await (await download_info.value).save_as(saved)
        with wave.open(str(saved), "rb") as w:
            assert (w.getnchannels(), w.getframerate()) == (2, 8000)
            assert w.getnframes() > 8000 * 5
        transcript = await page.request.get(f"/console/calls/{call_sid}/transcript.json")
        doc = json.loads(await transcript.text())
        assert doc["transport"] == "browser"
        assert any(t["role"] == "caller" and "Zählerstand" in t["text"] for t in doc["turns"])
        await browser.close()


async def test_watch_a_twilio_call_live_and_see_the_barge_in(stack: Stack) -> None:
    stack.behaviour.default_reply = FakeReply(LONG_REPLY)
    question = german_speech_ulaw("Guten Tag, wann haben Sie heute geöffnet?")
    interruption = german_speech_ulaw("Moment, das habe ich nicht verstanden, bitte noch einmal langsamer.")
    async with async_playwright() as pw:
        browser = await launch(pw)
        _, watcher = await logged_in(browser, stack.bot)
        async with place_call(stack.bot.base_url, public_url=PUBLIC_URL, auth_token=AUTH_TOKEN) as call:
            row = watcher.locator(f'#live tr[data-call="{call.call_sid}"]')
            await row.wait_for(timeout=10_000)
            await screenshot(watcher, "calls-live.png")
            await row.locator("a").click()
            await watcher.evaluate(RECORD_STATES)

            await call.wait_for_audio(timeout_s=10)
            await call.play_out(timeout_s=20)
            await wait_js(watcher, "() => window.__states.at(-1) === 'listening'", 15)
            await call.send_utterance(question, realtime=True)
            await call.send_silence(1000, realtime=True)
            await watcher.locator(".turn.caller").first.wait_for(timeout=15_000)
            await wait_js(watcher, "() => window.__states.includes('speaking')", 15)
            await call.send_silence(1200, realtime=True)  # let a sentence or two be heard
            await call.send_utterance(interruption, realtime=True)
            await call.send_silence(1500, realtime=True)
            await watcher.locator(".turn.bot.interrupted").first.wait_for(timeout=15_000)
            cut = watcher.locator(".turn.bot.interrupted .cut")
            assert await cut.count() == 1
            assert await watcher.locator("#transitions").get_by_text("barge_in").count() > 0
            await screenshot(watcher, "call-barge-in.png")
        await watcher.locator("#download-transcript").wait_for(timeout=15_000)
        await browser.close()

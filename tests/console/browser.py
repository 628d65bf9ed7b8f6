"""What the Playwright tests share: Debian's Chromium launched by path, a bot as a real server process wired
to the loopback provider fakes, a German caller as a WAV file made at test time, and a logged-in page.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page

from fakes.server import FakeEndpoints
from tests.support.audio import german_speech_ulaw, silence_ulaw
from web.chromium import CHROMIUM

# Re-exported: the browser tests import them from here.
from web.chromium import RECORD_STATES as RECORD_STATES
from web.chromium import launch as launch
from web.chromium import write_microphone_wav as write_microphone_wav

PASSWORD = "console-e2e-password"
BOT_START_S = 60.0
PORT_ATTEMPTS = 3
_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = _ROOT / os.environ.get("VOICEBOT_SCREENSHOTS", "tests/artifacts/screenshots")
"""Where the page screenshots go: ignored by git unless ``VOICEBOT_SCREENSHOTS=docs/screenshots`` refreshes
the README's images on purpose, so an ordinary test run leaves the work tree clean."""


def require_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")


def write_caller_wav(path: Path, text: str, *, lead_ms: int, tail_ms: int = 4000) -> Path:
    """The caller as Chromium's fake microphone plays it: silence while the greeting runs, then ``text``.

    48 kHz 16-bit mono, the rate a real microphone delivers, so the page's own resampler is exercised.
    """
    ulaw = silence_ulaw(lead_ms) + german_speech_ulaw(text, level_db=-16.0) + silence_ulaw(tail_ms)
    return write_microphone_wav(path, ulaw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class Bot:
    base_url: str
    data_dir: Path
    log_path: Path


@contextlib.asynccontextmanager
async def bot_process(tmp: Path, fakes: FakeEndpoints, **env: str) -> AsyncIterator[Bot]:
    """``voicebot serve`` in its own process, its cloud providers pointed at the in-test fakes.

    The port comes from ``free_port``, so another process may take it before the bot binds it; a bot that
    exits saying so is started again on another port."""
    log_path = tmp / "bot.log"
    environment = {
        **os.environ,
        "HOST": "127.0.0.1",
        "DATA_DIR": str(tmp / "data"),
        "CONSOLE_PASSWORD": PASSWORD,
        "OPENAI_API_KEY": "sk-fake",
        "OPENAI_BASE_URL": fakes.openai_base_url,
        "ELEVENLABS_API_KEY": "fake",
        "ELEVENLABS_BASE_URL": fakes.elevenlabs_base_url,
        "LOG_FORMAT": "json",
        **env,
    }
    for _ in range(PORT_ATTEMPTS):
        port = free_port()
        proc = await _start_bot(tmp, {**environment, "PORT": str(port)}, log_path)
        base = f"http://127.0.0.1:{port}"
        try:
            if await _ready(proc, base):
                yield Bot(base, tmp / "data", log_path)
                return
            log = log_path.read_text()
            if "address already in use" not in log.lower():
                raise RuntimeError(f"bot exited: {log[-2000:]}")
        finally:
            await _stop(proc)
    raise RuntimeError(f"bot: {PORT_ATTEMPTS} free ports were taken before it could bind them")


async def _start_bot(tmp: Path, environment: dict[str, str], log_path: Path) -> asyncio.subprocess.Process:
    voicebot = Path(sys.executable).with_name("voicebot")
    with log_path.open("wb") as log:
        return await asyncio.create_subprocess_exec(
            str(voicebot),
            "--env-file",
            str(tmp / "none.env"),
            "serve",
            stdout=log,
            stderr=log,
            env=environment,
        )


async def _ready(proc: asyncio.subprocess.Process, base: str) -> bool:
    """True once /health answers, False if the bot exited first. uvicorn logs nothing at start (log level
    warning), so /health is the ready signal; the bound only catches a bot that never comes up (a loaded
    machine may take 20 s to import it)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BOT_START_S
    async with httpx.AsyncClient() as client:
        while proc.returncode is None:
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(f"{base}/health")).status_code == 200:
                    return True
            if loop.time() > deadline:
                raise RuntimeError(f"bot did not start within {BOT_START_S:.0f} s")
            await asyncio.sleep(0.05)
    return False


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def logged_in(browser: Browser, bot: Bot) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(base_url=bot.base_url, viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto("/console")
    await page.fill("input[name=password]", PASSWORD)
    await page.click('form[action="/console/login"] button')
    await page.wait_for_selector("#live")
    return context, page


async def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


async def wait_js(page: Page, predicate: str, timeout_s: float = 30.0) -> object:
    """Polls ``predicate`` (a JS arrow function) until truthy. ``wait_for_function`` would need
    ``unsafe-eval``, which the console's Content-Security-Policy rightly refuses; the tests keep the CSP on.
    """
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        value = await page.evaluate(predicate)
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {predicate}")
        await asyncio.sleep(0.05)

"""Debian's Chromium as Playwright drives it here: one definition for the scenario helper and the tests.

The browser is always launched by path (``/usr/bin/chromium``), never one Playwright downloads, with the
flags a headless run on a server needs. A WAV file can stand in for the microphone; the browser call
(``/console/browser-call``) then hears a caller without anyone at a desk. Kept in the product, not in the
tests, because ``voicebot[test]`` users run scenarios in the browser too (``web/scenario_browser.py``), and
web may not import tests.
"""

from __future__ import annotations

import wave
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np

from media.codec import ulaw_to_array

if TYPE_CHECKING:
    from playwright.async_api import Browser, Playwright

CHROMIUM: Final = Path("/usr/bin/chromium")
CHROMIUM_ARGS: Final = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
FAKE_MICROPHONE_ARGS: Final = (
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
)
"""Grants the microphone without a prompt and lets the page play the bot's audio without a click."""

RECORD_STATES: Final = """
() => {
  window.__states = [];
  const note = () => {
    const badge = document.getElementById('state-badge');
    const state = badge && badge.dataset.state;
    if (state && window.__states[window.__states.length - 1] !== state) window.__states.push(state);
  };
  note();
  new MutationObserver(note).observe(document.getElementById('state'), {childList: true, subtree: true});
}
"""
"""Every state the console's badge shows, in order, however briefly: the page swaps it on each change."""


def chromium_args(microphone_wav: Path | None = None) -> list[str]:
    """The launch flags; with ``microphone_wav``, that file is played once as the microphone."""
    args = list(CHROMIUM_ARGS)
    if microphone_wav is not None:
        args += [*FAKE_MICROPHONE_ARGS, f"--use-file-for-fake-audio-capture={microphone_wav}%noloop"]
    return args


async def launch(pw: Playwright, *, microphone_wav: Path | None = None) -> Browser:
    return await pw.chromium.launch(executable_path=str(CHROMIUM), args=chromium_args(microphone_wav))


def write_microphone_wav(path: Path, ulaw: bytes) -> Path:
    """8 kHz μ-law as a 48 kHz 16-bit mono WAV, the rate a real microphone delivers, so the page's own
    resampler is exercised."""
    narrow = ulaw_to_array(ulaw).astype(np.float64)
    wide = np.interp(np.arange(len(narrow) * 6) / 6.0, np.arange(len(narrow)), narrow).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(48000)
        w.writeframes(wide.tobytes())
    return path

"""CPU per message on the media path, before and after the capacity work, in CPU time (``process_time``).

Run: ``python -m bench.wire_path``. Every 20 ms frame of every call arrives as one Twilio JSON message, is
decoded, and goes through the turn detector; every 100 ms of bot audio leaves as one JSON message. At 200
calls that is 10,000 inbound and 2,000 outbound messages a second, so a microsecond per inbound message is
1 % of a core. "before" re-creates the code these paths ran until the capacity work (``json.loads`` and
field checks on the dict; a dict through ``json.dumps``; the frame's level from an int16 array, its bytes
and a float32 copy), "after" calls the project's functions (for an inbound media message ``inbound_audio``,
the check the media socket runs per frame). CPU time, not wall time: the figures stay comparable on a
shared machine, though a busy sibling core still slows the caches. The WebSocket stack's own cost
(uvicorn, Litestar) is not in here; the whole-call figures are ``bench.run`` and ``bench.fleet``.
"""

from __future__ import annotations

import base64
import json
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.run import machine
from media import twilio_protocol
from media.codec import ulaw_to_array, ulaw_to_pcm16
from media.echo import level_db, pcm16_level_db
from media.turns import TurnConfig, TurnDetector
from media.twilio_outbound import media_message
from media.twilio_protocol import inbound_audio, parse_inbound

INBOUND_PER_S_AT_200 = 200 * 50
OUTBOUND_PER_S_AT_200 = 200 * 10
ROUNDS = 7


def _cpu_us(fn: Callable[[], Any], n: int) -> float:
    t = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - t) / n * 1e6


def _pair(before: Callable[[], Any], after: Callable[[], Any], n: int = 20_000) -> tuple[float, float]:
    """µs per call of each, best of ``ROUNDS`` rounds taken in turns, so a burst of other work on the
    machine hits both and the best round of each is the least disturbed."""
    b = a = math.inf
    for _ in range(ROUNDS):
        b = min(b, _cpu_us(before, n))
        a = min(a, _cpu_us(after, n))
    return b, a


def detector_frame_us(*, bot_speaking: bool, frames: int = 20_000) -> float:
    """CPU µs per inbound frame through the turn detector, the VAD and the echo gate included; while the
    bot speaks, also its 100 ms of reference audio every fifth frame (the gate's per-second estimates are
    in the average). The caller's line carries low noise, like a handset with no echo."""
    rng = np.random.default_rng(2)
    noise = [bytes(rng.choice([0x7E, 0x7F, 0xFE, 0xFF], 160).astype(np.uint8)) for _ in range(50)]
    speech = [bytes(rng.integers(0, 256, 800, dtype=np.uint8)) for _ in range(20)]
    best = math.inf
    for _ in range(3):
        detector = TurnDetector(TurnConfig())
        detector.bot_speaking = bot_speaking
        t = time.process_time()
        for i in range(frames):
            if bot_speaking and i % 5 == 0:
                detector.play_reference(speech[(i // 5) % 20])
            detector.push(noise[i % 50])
        best = min(best, (time.process_time() - t) / frames * 1e6)
    return best


class _JsonDecoder:
    decode = staticmethod(json.loads)


def main() -> int:
    rng = np.random.default_rng(1)
    frame = bytes(rng.integers(0, 256, 160, dtype=np.uint8))
    chunk = bytes(rng.integers(0, 256, 800, dtype=np.uint8))
    inbound = json.dumps(
        {
            "event": "media",
            "sequenceNumber": "4711",
            "media": {"track": "inbound", "chunk": "4710", "timestamp": "94200", "payload": ""},
            "streamSid": "MZ" + "0" * 32,
        }
    ).replace('"payload": ""', f'"payload": "{base64.b64encode(frame).decode()}"')
    sid = "MZ" + "0" * 32

    def old_media() -> str:
        payload = base64.b64encode(chunk).decode("ascii")
        msg = {"event": "media", "streamSid": sid, "media": {"payload": payload}}
        return json.dumps(msg, separators=(",", ":"), ensure_ascii=False)

    def old_level() -> tuple[float, bytes]:
        samples = ulaw_to_array(frame)
        return level_db(samples.astype(np.float32)), samples.tobytes()

    def new_level() -> tuple[float, bytes]:
        pcm = ulaw_to_pcm16(frame)
        return pcm16_level_db(pcm), pcm

    assert old_media() == media_message(sid, chunk)
    new_decoder = twilio_protocol._DECODE
    old_decoder = _JsonDecoder()

    def old_parse() -> object:  # the code before: every message through the general parser, on json.loads
        twilio_protocol._DECODE = old_decoder  # type: ignore[assignment]
        try:
            return parse_inbound(inbound)
        finally:
            twilio_protocol._DECODE = new_decoder

    def new_check() -> object:  # what the server runs per frame now; the same assignments, for a fair pair
        twilio_protocol._DECODE = new_decoder
        try:
            return inbound_audio(inbound)
        finally:
            twilio_protocol._DECODE = new_decoder

    rows = [
        ("inbound: parse a media message", *_pair(old_parse, new_check)),
        ("inbound: frame PCM + level", *_pair(old_level, new_level)),
        ("outbound: build a media message", *_pair(old_media, lambda: media_message(sid, chunk))),
    ]
    print(f"machine: {machine()}")
    print(f"{'per message':<34} {'before µs':>9} {'after µs':>8} | {'% of a core at 200 calls':>24}")
    print("-" * 82)
    for name, before, after in rows:
        rate = OUTBOUND_PER_S_AT_200 if name.startswith("outbound") else INBOUND_PER_S_AT_200
        print(
            f"{name:<34} {before:>9.2f} {after:>8.2f} | "
            f"{before * rate / 1e4:>10.1f} → {after * rate / 1e4:>5.1f} %"
        )
    print()
    print(f"{'turn detector per inbound frame':<34} {'µs':>9} {'':>8} | {'% of a core at 200 calls':>24}")
    print("-" * 82)
    for name, speaking in (("caller talks or line is quiet", False), ("bot speaking (echo gate on)", True)):
        us = detector_frame_us(bot_speaking=speaking)
        print(f"{name:<34} {us:>9.2f} {'':>8} | {us * INBOUND_PER_S_AT_200 / 1e4:>18.1f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

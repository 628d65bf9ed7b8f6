"""The ElevenLabs key rides in the stream-input socket's upgrade headers; the websockets client logs those
headers at debug level, and they must reach the log masked (the suite's guard reads every line)."""

from __future__ import annotations

import logging

from fakes.behaviour import FakeBehaviour
from fakes.server import run_fake_providers
from media.tts_elevenlabs_ws import ElevenLabsWebSocketTextToSpeech
from tests.security.conftest import ELEVENLABS_KEY


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def test_the_key_in_the_upgrade_headers_is_masked_in_debug_logs() -> None:
    client_log = logging.getLogger("websockets.client")
    before = client_log.level
    raw = _Records()
    client_log.addHandler(raw)
    client_log.setLevel(logging.DEBUG)  # the client decides at connect whether to log its handshake
    try:
        async with run_fake_providers(FakeBehaviour(elevenlabs_api_key=ELEVENLABS_KEY), speech=False) as fake:
            tts = ElevenLabsWebSocketTextToSpeech(
                api_key=ELEVENLABS_KEY, voice_id="v", base_url=fake.elevenlabs_base_url
            )
            assert b"".join([chunk async for chunk in tts.synthesize("Guten Tag.")])
    finally:
        client_log.setLevel(before)
        client_log.removeHandler(raw)
    # The header line was logged with the key in it; the guard then finds it masked in what was written.
    assert any(ELEVENLABS_KEY in m and "xi-api-key" in m.lower() for m in raw.messages)

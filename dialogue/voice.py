"""The bot's voice in one call: the playout feed, the speaker, what the caller heard, and the recording.

Duck, pause, resume and clear are the only controls an overlap needs, and they are synchronous. The feed
runs as one task the session owns; if sending fails (a transport bug, a broken socket) the feed restarts
with the next chunk instead of leaving the caller in silence, and after repeated failures the call is
given up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from dialogue.config import CallDeps, Recorder
from dialogue.speaker import Speaker, Spoken
from media.ducking import duck_table
from media.playback import PlaybackResult, PlaybackTracker, TurnHearing
from media.playout import Playout
from media.speech import TextToSpeech
from media.transport import CallTransport

FEED_FAILURES_BEFORE_HANGUP = 5


class BotVoice:
    def __init__(
        self,
        transport: CallTransport,
        deps: CallDeps,
        *,
        lead_ms: int,
        echo_slack_s: float,
        recorder: Recorder | None,
        on_sent: Callable[[bytes], None],
        on_underrun: Callable[[float], None] | None = None,
    ) -> None:
        self._recorder = recorder
        self._on_sent_ref = on_sent
        self.playout = Playout(transport, lead_ms=lead_ms, on_sent=self._sent, on_underrun=on_underrun)
        self.tracker = PlaybackTracker()
        self.speaker = Speaker(
            self.playout,
            deps.tts,
            cached=deps.cached_audio,
            backup=deps.backup_tts,
            tracker=self.tracker,
            echo_slack_s=echo_slack_s,
        )
        self.feed_failures = 0
        self._log = structlog.get_logger()

    async def feed(self, on_failure: Callable[[BaseException], None]) -> None:
        """Runs the playout until the call ends; ``on_failure`` hears of each failed send."""
        while True:
            try:
                await self.playout.run()
                return
            except Exception as exc:  # noqa: BLE001 - the chunk is lost, the voice goes on
                self.feed_failures += 1
                self._log.error("playout_failed", error=repr(exc), failures=self.feed_failures)
                on_failure(exc)
                if self.feed_failures >= FEED_FAILURES_BEFORE_HANGUP:
                    return
                await asyncio.sleep(0)

    async def say(
        self,
        text: str,
        *,
        tag: str,
        key: int,
        on_first_audio: Callable[[], None] | None = None,
        on_first_byte: Callable[[], None] | None = None,
        engine: TextToSpeech | None = None,
    ) -> Spoken:
        return await self.speaker.say(
            text,
            tag=tag,
            turn=key,
            on_first_audio=on_first_audio,
            on_first_byte=on_first_byte,
            engine=engine,
        )

    async def played(self, spoken: Spoken) -> bool:
        return await self.speaker.played(spoken.mark)

    def pause(self) -> None:
        self.playout.pause()

    def duck(self) -> None:
        """Turn the voice down, not off: an onset over the bot may be a "mhm" that should leave no gap."""
        self.playout.duck(duck_table())

    def resume(self) -> None:
        self.playout.resume()

    def clear(self) -> None:
        """Silence the bot now: drop queued audio, clear the far end's buffer, and account for what was lost
        (unsent marks released, pending ones flushed, unplayed audio out of the recording)."""
        self.speaker.release(self.playout.flush())
        self.tracker.on_clear()
        if self._recorder is not None:
            self._recorder.clear()

    def clear_if_playing(self) -> None:
        if self.playout.is_playing():
            self.clear()

    def on_echo(self, mark: str) -> PlaybackResult:
        result = self.tracker.on_echo(mark)
        self.speaker.on_echo(mark)
        return result

    def hearing(self, key: int) -> TurnHearing:
        """What the caller heard of the speech under ``key``; the key is forgotten afterwards."""
        hearing = self.tracker.hearing(key)
        self.tracker.forget(key)
        return hearing

    def forget(self, key: int) -> None:
        self.tracker.forget(key)

    def close(self) -> None:
        self.speaker.cancel_all()
        if self._recorder is not None:
            self._recorder.close()

    def _sent(self, ulaw: bytes) -> None:
        self._on_sent_ref(ulaw)
        if self._recorder is not None:
            self._recorder.bot(ulaw)

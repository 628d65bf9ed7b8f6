"""One per-call transcription interface for streaming and batch engines alike.

A streaming engine hears the caller while they speak, so its final transcript is ready a moment after our
turn detector decides; a batch engine needs the whole utterance first. The call session should not care:
it feeds every inbound frame, commits when its detector says the turn is over, and gets text back (or a
``ProviderError`` it answers with a spoken fallback). The batch engines join through ``BufferedTranscriber``,
which holds the audio since the last commit and uploads it at commit time.

Timeline of one turn, as the session drives it::

    feed(frame) … feed(frame)      # every inbound 20 ms μ-law frame, also during the bot's speech
    commit()  -> Transcript        # the detector decided: the words since the previous commit or discard
    discard()                      # the audio since the last commit was no turn (a cough, a backchannel)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from media.codec import ulaw_to_pcm16
from media.speech import SpeechToText, Transcript, Utterance

PartialHandler = Callable[[str], None]
"""Receives the running text of the segment being spoken (the whole text so far, not the last delta)."""


@runtime_checkable
class StreamingTranscriber(Protocol):
    """One call's transcription; made by ``StreamingSTT.open_call`` and closed at hang-up."""

    on_partial: PartialHandler | None

    async def start(self) -> None:
        """Connects (for streaming engines) so the first turn does not wait for a handshake; never raises."""
        ...

    def feed(self, ulaw: bytes) -> None:
        """Takes one inbound frame of 8 kHz μ-law; cheap and synchronous, called for every frame."""
        ...

    async def commit(self) -> Transcript:
        """The transcript of everything fed since the last commit or discard; ``ProviderError`` on failure."""
        ...

    def discard(self) -> None:
        """Forgets the audio fed since the last commit: it was no turn."""
        ...

    async def close(self) -> None:
        """Ends the call's connection and tasks; idempotent."""
        ...


@runtime_checkable
class StreamingSTT(Protocol):
    """The per-process engine; ``open_call`` is cheap and does no I/O (``start`` does)."""

    name: str

    def open_call(self, call_sid: str) -> StreamingTranscriber: ...


class BufferedTranscriber:
    """Gives a batch ``SpeechToText`` the streaming interface: it uploads the held audio at commit.

    Partial transcripts come only from engines that can make them; the batch upload has none.
    """

    def __init__(self, stt: SpeechToText, *, max_hold_s: float = 60.0) -> None:
        self._stt = stt
        self._held = bytearray()
        self._max_hold = int(max_hold_s * 8000)
        self.on_partial: PartialHandler | None = None

    async def start(self) -> None:
        return None

    def feed(self, ulaw: bytes) -> None:
        self._held += ulaw
        if len(self._held) > self._max_hold:
            # A caller who talks for a minute without a commit: keep the newest part, as the detector
            # caps utterances long before this anyway.
            del self._held[: len(self._held) - self._max_hold]

    async def commit(self) -> Transcript:
        audio, self._held = bytes(self._held), bytearray()
        return await self._stt.transcribe(Utterance(ulaw_to_pcm16(audio)))

    def discard(self) -> None:
        self._held.clear()

    async def close(self) -> None:
        self._held.clear()


class BufferedSTT:
    """The factory for ``BufferedTranscriber``: the batch and local engines as a ``StreamingSTT``."""

    def __init__(self, stt: SpeechToText) -> None:
        self.stt = stt
        self.name = f"buffered:{stt.name}"

    def open_call(self, call_sid: str) -> StreamingTranscriber:
        return BufferedTranscriber(self.stt)

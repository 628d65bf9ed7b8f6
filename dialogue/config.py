"""What a call session is built from: its settings, its collaborators, and the recorder contract."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from dialogue.llm import LanguageModel
from dialogue.phrases import PhraseCatalogue
from dialogue.tools import ToolRegistry
from media.speech import SpeechToText, TextToSpeech
from media.streaming_stt import StreamingTranscriber
from media.turns import TurnConfig


@dataclass(frozen=True, slots=True)
class SessionConfig:
    turn: TurnConfig = field(default_factory=TurnConfig)
    playout_lead_ms: int = 200
    reprompt_after_s: float = 8.0
    max_reprompts: int = 2
    max_call_duration_s: float = 900.0
    dtmf_actions: Mapping[str, str] = field(default_factory=lambda: {"0": "transfer"})
    transfer_number: str = ""
    failures_before_handover: int = 3
    history_token_budget: int = 3000
    echo_slack_s: float = 1.5
    """A mark echo later than its audio's end plus this is lost: the call moves on (``Speaker.played``)."""
    speculative_stt: bool = True
    """Transcribe at a pause, before the end of turn is certain; used only if the caller stays silent."""
    preemptive_reply: bool = True
    """Start the reply (LLM and the first clause's TTS) at a pause judged complete; speak it at the end."""
    first_clause_words: int = 3
    """TTS gets the reply's first clause once this many words are in (0: the first whole sentence)."""


@dataclass(frozen=True, slots=True)
class CallDeps:
    """Shared by every call of the process: clients stay warm, phrases stay cached."""

    stt: SpeechToText
    llm: LanguageModel
    tts: TextToSpeech
    lines: PhraseCatalogue
    system_prompt: str
    cached_audio: Callable[[str], bytes | None] = lambda _text: None
    backup_tts: TextToSpeech | None = None
    tools: ToolRegistry = field(default_factory=ToolRegistry)
    open_transcriber: Callable[[str], StreamingTranscriber] | None = None
    """A streaming engine's transcriber for a call (by CallSid); None: the batch upload of ``stt``."""


class Recorder(Protocol):
    """Writes the call's stereo recording as it happens (never held in memory for the whole call)."""

    def caller(self, ulaw: bytes) -> None: ...

    def bot(self, ulaw: bytes) -> None: ...

    def clear(self) -> None:
        """The far end dropped its buffer: bot audio not yet played was never heard."""

    def close(self) -> None: ...

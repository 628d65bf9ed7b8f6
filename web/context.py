"""Everything the routes share, built once by ``create_app`` and kept on ``app.state``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from dialogue.events import EventSink, FanoutSink
from media.transport import CallControl, CallTransport, StreamHandler, StreamStart
from web.providers import Providers
from web.settings import Settings

NOTE_CALLER = "note_caller"
"""``ctx.extras`` key: ``(call_sid, caller_hash) -> None``, set by the call store to keep the keyed hash."""

SessionFactory = Callable[[CallTransport, CallControl, StreamStart], StreamHandler]
"""(outbound transport, call control, start message) → the handler that receives the stream."""


@dataclass(slots=True)
class AppContext:
    settings: Settings
    providers: Providers
    sink: FanoutSink = field(default_factory=FanoutSink)
    session_factory: SessionFactory | None = None
    """Builds the call session for a new stream; None until the dialogue layer is wired in."""
    extras: dict[str, object] = field(default_factory=dict)
    """Collaborators added by feature modules at start-up (call registry, store, channels)."""

    def add_sink(self, sink: EventSink) -> None:
        self.sink.add(sink)

    def not_ready_reasons(self) -> list[str]:
        reasons = []
        for role, engine in (
            ("stt", self.providers.stt),
            ("llm", self.providers.llm),
            ("tts", self.providers.tts),
        ):
            if engine is None:
                reasons.append(f"no {role} provider")
        return reasons + list(self.providers.missing if not self.providers.ready else [])

"""Event sinks that keep dictated numbers out of what the console shows and stores (``CONSOLE_MASK_DIGITS``).

The call session publishes what was said verbatim; the dialogue needs it. What a developer sees later need
not include the IBAN a caller read out, so the console's hub and store get a masked copy.
"""

from __future__ import annotations

import dataclasses

from dialogue.events import BotSentence, CallEvent, EventSink, TranscriptEvent
from media.privacy import mask_digit_runs


class DigitMaskingSink:
    def __init__(self, inner: EventSink) -> None:
        self.inner = inner

    def publish(self, event: CallEvent) -> None:
        if isinstance(event, TranscriptEvent):
            event = dataclasses.replace(
                event, text=mask_digit_runs(event.text), cut=mask_digit_runs(event.cut)
            )
        elif isinstance(event, BotSentence):
            event = dataclasses.replace(event, text=mask_digit_runs(event.text))
        self.inner.publish(event)

"""The console's memory of calls: the live ones, the most recently ended for the history list, and the
erased ones it must not bring back.

Split from ``console.views`` (the fold of one call's events): this is the set of those views that one
instance keeps, bounded, and what retention and erasure take out of it.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

from console.views import CallView
from dialogue.events import CallEnded, CallEvent, CallStarted

ERASED_KEPT: Final = 10_000
"""Erased call SIDs remembered, so that events still in flight cannot re-create their view."""


class LiveCalls:
    """All calls this instance has seen: live ones, plus the most recently ended for the history list."""

    def __init__(self, keep_ended: int = 50, silent_after_s: float = 3600.0) -> None:
        self._calls: OrderedDict[str, CallView] = OrderedDict()
        self._keep_ended = keep_ended
        self._silent_after_s = silent_after_s
        """A "live" call with no event for this long lost its end (a crashed session): forget it."""
        self._erased: OrderedDict[str, bool] = OrderedDict()
        """Calls deleted from the store: True once gone here too, False while their end is still on its
        way (events travel batched, so the store may know a call ended before this view does)."""

    def apply(self, event: CallEvent) -> CallView | None:
        """Folds one event in; None for a call that was erased (its late events must not bring it back)."""
        sid = event.call_sid
        erased = self._erased.get(sid)
        if erased:
            return None
        view = self._calls.get(sid)
        if view is None:
            view = self._calls[sid] = CallView(sid, started_at=event.at)
        view.apply(event)
        if isinstance(event, CallEnded):
            if erased is False:
                del self._calls[sid]
                self._erased[sid] = True
                return None
            self._calls.move_to_end(sid)
            self._forget_old()
        elif isinstance(event, CallStarted):
            self._forget_silent(event.at)
        return view

    def get(self, call_sid: str) -> CallView | None:
        return self._calls.get(call_sid)

    def live(self) -> list[CallView]:
        return sorted((v for v in self._calls.values() if v.live), key=lambda v: -v.started_at)

    def ended(self) -> list[CallView]:
        return sorted((v for v in self._calls.values() if not v.live), key=lambda v: -v.started_at)

    def drop(self, call_sids: list[str]) -> None:
        """Calls deleted from the store (retention, erasure) leave the history list here too: at once when
        this view has seen them end, else at their end, which may still be on its way."""
        for sid in call_sids:
            view = self._calls.get(sid)
            gone = view is None or not view.live
            if view is not None and gone:
                del self._calls[sid]
            self._erased[sid] = gone
            self._erased.move_to_end(sid)
        while len(self._erased) > ERASED_KEPT:
            self._erased.popitem(last=False)

    def _forget_silent(self, now: float) -> None:
        for sid in [
            s for s, v in self._calls.items() if v.live and now - v.last_event_at > self._silent_after_s
        ]:
            del self._calls[sid]

    def _forget_old(self) -> None:
        ended = [sid for sid, v in self._calls.items() if not v.live]
        for sid in ended[: max(0, len(ended) - self._keep_ended)]:
            del self._calls[sid]

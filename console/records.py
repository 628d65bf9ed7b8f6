"""Tables of the call store: one row per call, one per finished turn, and a light log of everything else.

The log keeps the events the call page shows (state changes, latency, speech activity, protocol facts,
errors) as JSON, so a finished call is rebuilt by replaying them through the live page's fold instead of a
second rendering path. Bot sentences are not kept: the finished bot turn supersedes them.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class CallRecord(Base):
    __tablename__ = "calls"
    __table_args__ = (Index("ix_calls_instance_open", "instance", "ended_at"),)

    call_sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    stream_sid: Mapped[str] = mapped_column(String(64), default="")
    caller: Mapped[str] = mapped_column(String(64), default="")
    """Masked, as the event carried it: the store never sees a full number."""
    caller_hash: Mapped[str] = mapped_column(String(64), default="", index=True)
    """Keyed hash of the full number (``media.privacy.caller_hash``): finds a caller's calls, no more."""
    transport: Mapped[str] = mapped_column(String(16), default="")
    started_at: Mapped[float] = mapped_column(Float, index=True)
    ended_at: Mapped[float | None] = mapped_column(Float, default=None)
    end_reason: Mapped[str] = mapped_column(String(64), default="")
    duration_s: Mapped[float | None] = mapped_column(Float, default=None)
    turns: Mapped[int] = mapped_column(Integer, default=0)
    last_latency_ms: Mapped[float | None] = mapped_column(Float, default=None)
    instance: Mapped[str] = mapped_column(String(96), default="")
    """The bot process that held the call: its recording is a file on that machine (``web.fleet``)."""


class TurnRecord(Base):
    __tablename__ = "turns"
    __table_args__ = (Index("ix_turns_call_at", "call_sid", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_sid: Mapped[str] = mapped_column(String(64), ForeignKey("calls.call_sid", ondelete="CASCADE"))
    turn: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(8))
    text: Mapped[str] = mapped_column(Text, default="")
    cut: Mapped[str] = mapped_column(Text, default="")
    interrupted: Mapped[bool] = mapped_column(Boolean, default=False)
    at: Mapped[float] = mapped_column(Float)


class EventRecord(Base):
    __tablename__ = "call_events"
    __table_args__ = (Index("ix_call_events_call_at", "call_sid", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_sid: Mapped[str] = mapped_column(String(64), ForeignKey("calls.call_sid", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(24))
    at: Mapped[float] = mapped_column(Float)
    data: Mapped[str] = mapped_column(Text, default="{}")

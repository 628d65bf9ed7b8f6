"""Baseline: calls (with the keyed caller hash), finished turns and the event log, as before migrations.

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _call_fk() -> sa.ForeignKey:
    return sa.ForeignKey("calls.call_sid", ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("call_sid", sa.String(64), primary_key=True),
        sa.Column("stream_sid", sa.String(64), nullable=False, server_default=""),
        sa.Column("caller", sa.String(64), nullable=False, server_default=""),
        sa.Column("caller_hash", sa.String(64), nullable=False, server_default=""),
        sa.Column("transport", sa.String(16), nullable=False, server_default=""),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("ended_at", sa.Float, nullable=True),
        sa.Column("end_reason", sa.String(64), nullable=False, server_default=""),
        sa.Column("duration_s", sa.Float, nullable=True),
        sa.Column("turns", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_latency_ms", sa.Float, nullable=True),
    )
    op.create_index("ix_calls_caller_hash", "calls", ["caller_hash"])
    op.create_index("ix_calls_started_at", "calls", ["started_at"])
    op.create_table(
        "turns",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "call_sid", sa.String(64), sa.ForeignKey("calls.call_sid", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("turn", sa.Integer, nullable=False),
        sa.Column("role", sa.String(8), nullable=False),
        sa.Column("text", sa.Text, nullable=False, server_default=""),
        sa.Column("cut", sa.Text, nullable=False, server_default=""),
        sa.Column("interrupted", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.create_index("ix_turns_call_at", "turns", ["call_sid", "at"])
    op.create_table(
        "call_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "call_sid", sa.String(64), sa.ForeignKey("calls.call_sid", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("data", sa.Text, nullable=False, server_default="{}"),
    )
    op.create_index("ix_call_events_call_at", "call_events", ["call_sid", "at"])


def downgrade() -> None:
    op.drop_table("call_events")
    op.drop_table("turns")
    op.drop_table("calls")

"""Which instance held each call: its recording is a file on that machine, and its liveness decides
whether an unfinished call is still running or was lost with a killed process.

Revision ID: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("instance", sa.String(96), nullable=False, server_default=""))
        batch.create_index("ix_calls_instance_open", ["instance", "ended_at"])


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_index("ix_calls_instance_open")
        batch.drop_column("instance")

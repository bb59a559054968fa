"""outbox.platform_message_id and .delivery: what WhatsApp's status reports say of each message

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 05:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("platform_message_id", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("delivery", sa.String(), nullable=True))
        batch_op.create_index(
            "ix_outbox_platform_message_id", ["platform_message_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_platform_message_id")
        batch_op.drop_column("delivery")
        batch_op.drop_column("platform_message_id")

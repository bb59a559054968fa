"""conversation.replied_version: the last version whose replies reached the channel

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 22:55:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("replied_version", sa.Integer(), nullable=False, server_default="0")
        )
    # Chats from before: their replies were sent (or are long past caring).
    op.execute("UPDATE conversation SET replied_version = version")


def downgrade() -> None:
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.drop_column("replied_version")

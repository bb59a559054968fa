"""delivery_report: status reports that came before the message's platform id was written

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 08:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delivery_report",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform_message_id", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("resend_note", sa.String(), nullable=True),
        sa.Column("unreachable", sa.Boolean(), nullable=False),
        sa.Column("received_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_delivery_report_platform_message_id", "delivery_report", ["platform_message_id"]
    )
    op.create_index("ix_delivery_report_received_at", "delivery_report", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_delivery_report_received_at", table_name="delivery_report")
    op.drop_index("ix_delivery_report_platform_message_id", table_name="delivery_report")
    op.drop_table("delivery_report")

"""dev_group.digits: the digits a group reads numbers in ("arab" or "latn")

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 05:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dev_group", schema=None) as batch_op:
        batch_op.add_column(sa.Column("digits", sa.String(), nullable=False, server_default="latn"))
    # The defaults of storage.network.DIGITS_BY_COUNTRY, for the groups set up before.
    op.execute("UPDATE dev_group SET digits = 'arab' WHERE country IN ('EG', 'SD', 'BH')")


def downgrade() -> None:
    with op.batch_alter_table("dev_group", schema=None) as batch_op:
        batch_op.drop_column("digits")

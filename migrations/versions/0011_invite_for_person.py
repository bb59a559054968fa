"""invite.for_person_id: a code that adds a channel to an existing person

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 07:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("invite", schema=None) as batch_op:
        batch_op.add_column(sa.Column("for_person_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_invite_for_person_id_person", "person", ["for_person_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("invite", schema=None) as batch_op:
        batch_op.drop_constraint("fk_invite_for_person_id_person", type_="foreignkey")
        batch_op.drop_column("for_person_id")

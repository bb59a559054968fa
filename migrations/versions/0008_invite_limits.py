"""Invitations: revocable, with the invited person's name and language; failed attempts stored

Open codes made without an expiry get one (90 days after they were made, the longest an
invitation may now last).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 05:30:00
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
import sqlmodel
from alembic import op

from storage.types import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

MAX_VALIDITY = timedelta(days=90)


def upgrade() -> None:
    with op.batch_alter_table("invite", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revoked_at", UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(
            sa.Column("language", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )
    op.create_table(
        "invite_failure",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("chat_key", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("failed_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    )
    op.create_index("ix_invite_failure_chat_key", "invite_failure", ["chat_key"])
    op.create_index("ix_invite_failure_failed_at", "invite_failure", ["failed_at"])
    invite = sa.table(
        "invite",
        sa.column("code", sqlmodel.sql.sqltypes.AutoString()),
        sa.column("created_at", UTCDateTime(timezone=True)),
        sa.column("expires_at", UTCDateTime(timezone=True)),
    )
    connection = op.get_bind()
    never = connection.execute(
        sa.select(invite.c.code, invite.c.created_at).where(invite.c.expires_at.is_(None))
    ).all()
    for code, created_at in never:
        connection.execute(
            invite.update()
            .where(invite.c.code == code)
            .values(expires_at=created_at + MAX_VALIDITY)
        )


def downgrade() -> None:
    op.drop_index("ix_invite_failure_failed_at", table_name="invite_failure")
    op.drop_index("ix_invite_failure_chat_key", table_name="invite_failure")
    op.drop_table("invite_failure")
    with op.batch_alter_table("invite", schema=None) as batch_op:
        batch_op.drop_column("language")
        batch_op.drop_column("name")
        batch_op.drop_column("revoked_at")

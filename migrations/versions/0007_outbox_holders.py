"""outbox claims carry their holder; holders heartbeat; PostgreSQL notifies enqueues

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 05:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# A statement-level trigger: one notification per enqueueing statement, delivered at commit
# (PostgreSQL folds identical notifications of one transaction into one).
NOTIFY_FUNCTION = """
CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('sanad_outbox', current_schema());
    RETURN NULL;
END;
$$
"""
NOTIFY_TRIGGER = (
    "CREATE TRIGGER outbox_enqueued AFTER INSERT ON outbox "
    "FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify()"
)


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=64), nullable=True))
    op.create_table(
        "sender_heartbeat",
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("seen_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("holder"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(NOTIFY_FUNCTION)
        op.execute(NOTIFY_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS outbox_enqueued ON outbox")
        op.execute("DROP FUNCTION IF EXISTS outbox_notify()")
    op.drop_table("sender_heartbeat")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("claimed_by")

"""outbox of intents (message, options, media, language, question); person_address

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 06:00:00

Rows written before hold rendered text: each keeps it as a literal-text intent (its buttons
as literal labels, its photo as the media reference). Every person's channel and address
becomes their first person_address row.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_OLD = sa.table(
    "outbox",
    sa.column("id", sa.Integer()),
    sa.column("text", sa.Text()),
    sa.column("options", sa.JSON()),
    sa.column("photo_path", sa.String()),
)
_NEW = sa.table(
    "outbox",
    sa.column("id", sa.Integer()),
    sa.column("message", sa.JSON()),
    sa.column("options", sa.JSON()),
    sa.column("media", sa.JSON()),
)


def upgrade() -> None:
    op.create_table(
        "person_address",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("last_inbound_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reachable", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel", "address"),
    )
    with op.batch_alter_table("person_address", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_person_address_person_id"), ["person_id"], unique=False
        )
    op.execute(
        "INSERT INTO person_address (person_id, channel, address, reachable) "
        "SELECT id, channel, address, reachable FROM person"
    )

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("message", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("media", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column("language", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )
        batch_op.add_column(sa.Column("question", sa.JSON(), nullable=True))
    bind = op.get_bind()
    for row_id, text, options, photo_path in bind.execute(
        sa.select(_OLD.c.id, _OLD.c.text, _OLD.c.options, _OLD.c.photo_path)
    ).all():
        bind.execute(
            _NEW.update().where(_NEW.c.id == row_id).values(**_as_intent(text, options, photo_path))
        )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.alter_column("message", existing_type=sa.JSON(), nullable=False)
        batch_op.drop_column("text")
        batch_op.drop_column("photo_path")


def _as_intent(text: str, options: Any, photo_path: str | None) -> dict[str, Any]:
    """A row's rendered text as a literal-text intent."""
    return {
        "message": {"lines": [{"literal": text}] if text else []},
        "options": [
            {"label": {"literal": str(label)}, "value": str(value)}
            for label, value in (options or [])
        ],
        "media": {"photo": photo_path} if photo_path else None,
    }


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("text", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(
            sa.Column("photo_path", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )
    old = sa.table(
        "outbox",
        sa.column("id", sa.Integer()),
        sa.column("message", sa.JSON()),
        sa.column("options", sa.JSON()),
        sa.column("media", sa.JSON()),
        sa.column("text", sa.Text()),
        sa.column("photo_path", sa.String()),
    )
    bind = op.get_bind()
    for row_id, message, options, media in bind.execute(
        sa.select(old.c.id, old.c.message, old.c.options, old.c.media)
    ).all():
        lines = [_plain(line) for line in (message or {}).get("lines", [])]
        photo = (media or {}).get("photo")
        bind.execute(
            old.update()
            .where(old.c.id == row_id)
            .values(
                text="\n".join(lines),
                options=[[_plain(o["label"]), o["value"]] for o in options or []],
                photo_path=photo if isinstance(photo, str) else None,
            )
        )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("question")
        batch_op.drop_column("language")
        batch_op.drop_column("media")
        batch_op.drop_column("message")
    op.drop_table("person_address")


def _plain(phrase: dict[str, Any]) -> str:
    """A phrase as text without a translator: its literal, first localized text, or msgid."""
    if "literal" in phrase:
        return str(phrase["literal"])
    if "localized" in phrase:
        return str(next(iter(phrase["localized"].values()), ""))
    return str(phrase.get("msgid", ""))

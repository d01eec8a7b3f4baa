"""integrations: Coral signing secrets and comment links, comment.queueable (Perspective doNotStore, Coral)

Revision ID: 0006
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("comment", schema=None) as batch_op:
        batch_op.add_column(sa.Column("queueable", sa.Boolean(), nullable=False, server_default=sa.true()))

    op.create_table(
        "coral_secret",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["site_id"], ["site.id"], name=op.f("fk_coral_secret_site_id_site")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coral_secret")),
    )
    with op.batch_alter_table("coral_secret", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_coral_secret_site_id"), ["site_id"], unique=False)

    op.create_table(
        "coral_comment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("comment_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("story_id", sa.String(length=255), nullable=False),
        sa.Column("author_id", sa.String(length=255), nullable=False),
        sa.Column("author_role", sa.String(length=32), nullable=True),
        sa.Column("parent_id", sa.String(length=255), nullable=True),
        sa.Column("coral_site_id", sa.String(length=255), nullable=True),
        sa.Column("tenant_id", sa.String(length=255), nullable=True),
        sa.Column("revision_of", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["comment_id"], ["comment.id"], name=op.f("fk_coral_comment_comment_id_comment")),
        sa.ForeignKeyConstraint(["revision_of"], ["comment.id"], name=op.f("fk_coral_comment_revision_of_comment")),
        sa.ForeignKeyConstraint(["site_id"], ["site.id"], name=op.f("fk_coral_comment_site_id_site")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coral_comment")),
    )
    with op.batch_alter_table("coral_comment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_coral_comment_comment_id"), ["comment_id"], unique=False)
        batch_op.create_index("ix_coral_comment_thread", ["site_id", "story_id", "author_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("coral_comment", schema=None) as batch_op:
        batch_op.drop_index("ix_coral_comment_thread")
        batch_op.drop_index(batch_op.f("ix_coral_comment_comment_id"))
    op.drop_table("coral_comment")
    with op.batch_alter_table("coral_secret", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_coral_secret_site_id"))
    op.drop_table("coral_secret")
    with op.batch_alter_table("comment", schema=None) as batch_op:
        batch_op.drop_column("queueable")

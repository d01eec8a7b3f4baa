"""initial schema: sites, keys, moderators, articles, comments, decisions, webhooks, bundle promotions

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bundle_promotion",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("promoted_at", sa.DateTime(), nullable=False),
        sa.Column("promoted_by", sa.String(length=100), nullable=True),
        sa.Column("note", sa.String(length=2000), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bundle_promotion")),
    )
    with op.batch_alter_table("bundle_promotion", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bundle_promotion_version"), ["version"], unique=False)

    op.create_table(
        "site",
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=True),
        sa.Column("webhook_url", sa.String(length=2048), nullable=True),
        sa.Column("retention_days", sa.Integer(), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("webhook_secret", sa.String(length=128), nullable=True),
        sa.Column("policy_mode", sa.String(length=16), nullable=False),
        sa.Column("policy_overrides", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_site")),
    )
    with op.batch_alter_table("site", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_site_name"), ["name"], unique=True)

    op.create_table(
        "article",
        sa.Column("url", sa.String(length=2048), nullable=True),
        sa.Column("title", sa.String(length=1000), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["site.id"], name=op.f("fk_article_site_id_site")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_article")),
        sa.UniqueConstraint("site_id", "external_id", name=op.f("uq_article_site_id")),
    )
    with op.batch_alter_table("article", schema=None) as batch_op:
        batch_op.create_index("ix_article_site_url", ["site_id", "url"], unique=False)

    op.create_table(
        "moderator",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("secret_prefix", sa.String(length=32), nullable=False),
        sa.Column("secret_hash", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("disabled_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["site_id"], ["site.id"], name=op.f("fk_moderator_site_id_site")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_moderator")),
        sa.UniqueConstraint("site_id", "name", name=op.f("uq_moderator_site_id")),
    )
    with op.batch_alter_table("moderator", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_moderator_secret_prefix"), ["secret_prefix"], unique=False)
        batch_op.create_index(batch_op.f("ix_moderator_site_id"), ["site_id"], unique=False)

    op.create_table(
        "site_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("prefix", sa.String(length=32), nullable=False),
        sa.Column("key_hash", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["site_id"], ["site.id"], name=op.f("fk_site_key_site_id_site")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_site_key")),
    )
    with op.batch_alter_table("site_key", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_site_key_prefix"), ["prefix"], unique=False)
        batch_op.create_index(batch_op.f("ix_site_key_site_id"), ["site_id"], unique=False)

    op.create_table(
        "comment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("parent_id", sa.String(length=255), nullable=True),
        sa.Column("article_id", sa.Integer(), nullable=True),
        sa.Column("article_ref", sa.String(length=255), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("text_sha256", sa.String(length=64), nullable=True),
        sa.Column("author_name", sa.String(length=255), nullable=True),
        sa.Column("author_email", sa.String(length=320), nullable=True),
        sa.Column("author_url", sa.String(length=2048), nullable=True),
        sa.Column("author_ip", sa.String(length=64), nullable=True),
        sa.Column("author_user_agent", sa.String(length=1024), nullable=True),
        sa.Column("erased_at", sa.DateTime(), nullable=True),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("label", sa.String(length=16), nullable=True),
        sa.Column("score_spam", sa.Float(), nullable=False),
        sa.Column("score_toxicity", sa.Float(), nullable=False),
        sa.Column("score_off_topic", sa.Float(), nullable=True),
        sa.Column("max_score", sa.Float(), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["article.id"], name=op.f("fk_comment_article_id_article")),
        sa.ForeignKeyConstraint(["site_id"], ["site.id"], name=op.f("fk_comment_site_id_site")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comment")),
        sa.UniqueConstraint("site_id", "external_id", name=op.f("uq_comment_site_id")),
    )
    with op.batch_alter_table("comment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_comment_article_id"), ["article_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_comment_created_at"), ["created_at"], unique=False)
        batch_op.create_index("ix_comment_site_status_created", ["site_id", "status", "created_at"], unique=False)
        batch_op.create_index("ix_comment_site_status_score", ["site_id", "status", "max_score"], unique=False)
        batch_op.create_index("ix_comment_site_text_sha256", ["site_id", "text_sha256"], unique=False)

    op.create_table(
        "decision",
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("label", sa.String(length=16), nullable=True),
        sa.Column("note", sa.String(length=2000), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("comment_id", sa.Integer(), nullable=False),
        sa.Column("moderator_id", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("spans", sa.JSON(), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["comment_id"], ["comment.id"], name=op.f("fk_decision_comment_id_comment")),
        sa.ForeignKeyConstraint(["moderator_id"], ["moderator.id"], name=op.f("fk_decision_moderator_id_moderator")),
        sa.ForeignKeyConstraint(["site_id"], ["site.id"], name=op.f("fk_decision_site_id_site")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decision")),
    )
    with op.batch_alter_table("decision", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_decision_comment_id"), ["comment_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_decision_created_at"), ["created_at"], unique=False)

    op.create_table(
        "webhook_delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("comment_id", sa.Integer(), nullable=False),
        sa.Column("decision_id", sa.Integer(), nullable=True),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["comment_id"], ["comment.id"], name=op.f("fk_webhook_delivery_comment_id_comment")),
        sa.ForeignKeyConstraint(
            ["decision_id"], ["decision.id"], name=op.f("fk_webhook_delivery_decision_id_decision")
        ),
        sa.ForeignKeyConstraint(["site_id"], ["site.id"], name=op.f("fk_webhook_delivery_site_id_site")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_delivery")),
    )
    with op.batch_alter_table("webhook_delivery", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webhook_delivery_comment_id"), ["comment_id"], unique=False)
        batch_op.create_index("ix_webhook_delivery_due", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_webhook_delivery_site_id"), ["site_id"], unique=False)

    op.create_table(
        "webhook_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["delivery_id"], ["webhook_delivery.id"], name=op.f("fk_webhook_attempt_delivery_id_webhook_delivery")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_attempt")),
    )
    with op.batch_alter_table("webhook_attempt", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webhook_attempt_delivery_id"), ["delivery_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("webhook_attempt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_attempt_delivery_id"))

    op.drop_table("webhook_attempt")
    with op.batch_alter_table("webhook_delivery", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_delivery_site_id"))
        batch_op.drop_index("ix_webhook_delivery_due")
        batch_op.drop_index(batch_op.f("ix_webhook_delivery_comment_id"))

    op.drop_table("webhook_delivery")
    with op.batch_alter_table("decision", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_decision_created_at"))
        batch_op.drop_index(batch_op.f("ix_decision_comment_id"))

    op.drop_table("decision")
    with op.batch_alter_table("comment", schema=None) as batch_op:
        batch_op.drop_index("ix_comment_site_text_sha256")
        batch_op.drop_index("ix_comment_site_status_score")
        batch_op.drop_index("ix_comment_site_status_created")
        batch_op.drop_index(batch_op.f("ix_comment_created_at"))
        batch_op.drop_index(batch_op.f("ix_comment_article_id"))

    op.drop_table("comment")
    with op.batch_alter_table("site_key", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_site_key_site_id"))
        batch_op.drop_index(batch_op.f("ix_site_key_prefix"))

    op.drop_table("site_key")
    with op.batch_alter_table("moderator", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_moderator_site_id"))
        batch_op.drop_index(batch_op.f("ix_moderator_secret_prefix"))

    op.drop_table("moderator")
    with op.batch_alter_table("article", schema=None) as batch_op:
        batch_op.drop_index("ix_article_site_url")

    op.drop_table("article")
    with op.batch_alter_table("site", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_site_name"))

    op.drop_table("site")
    with op.batch_alter_table("bundle_promotion", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bundle_promotion_version"))

    op.drop_table("bundle_promotion")

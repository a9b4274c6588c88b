"""Desk posts to erase: what the desk posted in the advisors' groups about a person who then
asked to be forgotten, until the desk has deleted it from Telegram.

Revision ID: 0014
Revises: 0013
"""
from alembic import op
import sqlalchemy as sa

from bot.storage import UTCDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "desk_posts_to_erase",
        sa.Column("chat_id", sa.String(64), primary_key=True),
        sa.Column("message_id", sa.String(64), primary_key=True),
        sa.Column("thread_id", sa.String(64)),
        sa.Column("since", UTCDateTime, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("desk_posts_to_erase")

"""Advisor handoff: tickets and the advisors' group messages that belong to them.

Revision ID: 0011
Revises: 0010
"""
from alembic import op
import sqlalchemy as sa

from bot.storage import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sender_id", sa.String(128), nullable=False),
        sa.Column("programme", sa.String(64)),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("country", sa.String(2)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("advisor_id", sa.Integer),
        sa.Column("advisor", sa.String(100)),
        sa.Column("resolution", sa.String(32)),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("announced_at", UTCDateTime),
        sa.Column("claimed_at", UTCDateTime),
        sa.Column("first_reply_at", UTCDateTime),
        sa.Column("last_activity_at", UTCDateTime),
        sa.Column("released_at", UTCDateTime),
        sa.Column("closed_at", UTCDateTime),
    )
    op.create_index("ix_tickets_sender_id", "tickets", ["sender_id"])
    op.create_index("ix_tickets_status", "tickets", ["status"])
    op.create_index("ix_tickets_created_at", "tickets", ["created_at"])
    op.create_table(
        "ticket_posts",
        sa.Column("chat_id", sa.String(64), primary_key=True),
        sa.Column("message_id", sa.String(64), primary_key=True),
        sa.Column("ticket_id", sa.Integer, nullable=False),
        sa.Column("thread_id", sa.String(64)),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_ticket_posts_ticket_id", "ticket_posts", ["ticket_id"])


def downgrade() -> None:
    op.drop_table("ticket_posts")
    op.drop_table("tickets")

"""Repayment reminders.

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

from bot.storage import DecimalString, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reminders",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sender_id", sa.String(128), nullable=False, index=True),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("programme", sa.String(64), nullable=False),
        sa.Column("due_date", sa.Date, nullable=False),
        sa.Column("amount", DecimalString, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("send_at", UTCDateTime, nullable=False, index=True),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_until", UTCDateTime),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("sent_at", UTCDateTime),
        sa.Column("last_error", sa.String(200)),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("reminders")

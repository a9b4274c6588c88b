"""Channel deliveries (duplicate detection), delivery statuses, SMS continuations.

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa

from bot.storage import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "channel_deliveries",
        sa.Column("channel", sa.String(16), primary_key=True),
        sa.Column("delivery_id", sa.String(64), primary_key=True),
        sa.Column("sender_id", sa.String(128), nullable=False),
        sa.Column("received_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_channel_deliveries_sender", "channel_deliveries",
                    ["channel", "sender_id", "received_at"])
    op.create_table(
        "delivery_statuses",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("message_id", sa.String(64)),
        sa.Column("recipient_id", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error_code", sa.String(16)),
        sa.Column("error", sa.String(200)),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False, index=True),
        sa.UniqueConstraint("channel", "message_id", name="uq_delivery_statuses_message"),
    )
    op.create_table(
        "sms_continuations",
        sa.Column("sender_id", sa.String(128), primary_key=True),
        sa.Column("pages", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sms_continuations")
    op.drop_table("delivery_statuses")
    op.drop_index("ix_channel_deliveries_sender", table_name="channel_deliveries")
    op.drop_table("channel_deliveries")

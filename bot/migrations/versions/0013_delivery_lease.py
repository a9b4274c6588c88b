"""Channel deliveries carry a lease: processing (claimed at) or done.

A delivery is claimed as `processing` before the message is handled and marked `done` after.
A claim still `processing` when its lease has run out belongs to a replica that died (kill -9):
the provider's retry processes it again. Rows from before this revision were processed: `done`.

Revision ID: 0013
Revises: 0012
"""
from alembic import op
import sqlalchemy as sa

from bot.storage import UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("channel_deliveries",
                  sa.Column("state", sa.String(12), nullable=False, server_default="done"))
    op.add_column("channel_deliveries", sa.Column("claimed_at", UTCDateTime))


def downgrade() -> None:
    with op.batch_alter_table("channel_deliveries") as batch:
        batch.drop_column("claimed_at")
        batch.drop_column("state")

"""Users' actual loans: the instalments staff enter or import (`python -m bot.reminders import-loan`).

Revision ID: 0012
Revises: 0011
"""
from alembic import op
import sqlalchemy as sa

from bot.storage import DecimalString, UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "loan_instalments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("contact", sa.String(128), nullable=False),
        sa.Column("programme", sa.String(64), nullable=False),
        sa.Column("due_date", sa.Date, nullable=False),
        sa.Column("amount", DecimalString, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("imported_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("contact", "programme", "due_date", name="uq_loan_instalments_due"),
    )
    op.create_index("ix_loan_instalments_contact", "loan_instalments", ["contact"])


def downgrade() -> None:
    op.drop_table("loan_instalments")

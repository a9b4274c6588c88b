"""Staff dashboard: accounts, sessions, advisors, analytics aggregates, indexes on Rasa's events.

Revision ID: 0010
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa

from bot.storage import DecimalString, UTCDateTime

revision = "0010"
down_revision = "0003"
branch_labels = None
depends_on = None

EVENT_INDEXES = {
    "ix_dash_events_type_ts": ("type_name", "timestamp"),
    "ix_dash_events_sender_ts": ("sender_id", "timestamp"),
}


def _segment_columns():
    return [sa.Column("channel", sa.String(32), nullable=False),
            sa.Column("language", sa.String(8), nullable=False),
            sa.Column("programme", sa.String(64), nullable=False)]


def upgrade() -> None:
    op.create_table(
        "staff_accounts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
        sa.Column("locked_until", UTCDateTime),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("last_login_at", UTCDateTime),
    )
    op.create_table(
        "staff_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("staff_accounts.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("last_seen_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False, index=True),
    )
    op.create_table(
        "advisors",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("programme", sa.String(64)),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("contact", sa.String(128), nullable=False),
        sa.Column("languages", sa.String(64), nullable=False, server_default=""),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "dash_state",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "dash_senders",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sender_hash", sa.String(32), nullable=False, unique=True),
        sa.Column("first_day", sa.Date),
        sa.Column("channel", sa.String(32)),
        sa.Column("language", sa.String(8)),
        sa.Column("country", sa.String(8)),
        sa.Column("last_ts", sa.Float),
        sa.Column("in_conversation", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "dash_user_days",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("sender_key", sa.Integer, primary_key=True),
        *_segment_columns(),
        sa.Column("conversations", sa.Integer, nullable=False),
        sa.Column("messages", sa.Integer, nullable=False),
        sa.Column("fallbacks", sa.Integer, nullable=False),
        sa.Column("is_new", sa.Boolean, nullable=False),
    )
    op.create_table(
        "dash_label_days",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("channel", sa.String(32), primary_key=True),
        sa.Column("language", sa.String(8), primary_key=True),
        sa.Column("programme", sa.String(64), primary_key=True),
        sa.Column("label", sa.String(64), primary_key=True),
        sa.Column("messages", sa.Integer, nullable=False),
    )
    op.create_table(
        "dash_calculations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sender_key", sa.Integer, nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("day", sa.Date, nullable=False, index=True),
        *_segment_columns(),
        sa.Column("product", sa.String(64), nullable=False),
        sa.Column("amount", DecimalString),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("repayments", sa.Integer),
        sa.Column("frequency", sa.String(16), nullable=False),
    )
    op.create_table(
        "dash_steps",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sender_key", sa.Integer, nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("step", sa.String(16), nullable=False),
        *_segment_columns(),
    )
    op.create_index("ix_dash_steps_step_day", "dash_steps", ["step", "day"])
    op.create_table(
        "dash_unanswered",
        sa.Column("question_id", sa.Integer, primary_key=True),
        sa.Column("similar_key", sa.String(40), nullable=False, index=True),
    )
    if sa.inspect(op.get_bind()).has_table("events"):
        for name, columns in EVENT_INDEXES.items():
            op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON events ({', '.join(columns)})")


def downgrade() -> None:
    for name in EVENT_INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
    for table in ("dash_unanswered", "dash_steps", "dash_calculations", "dash_label_days", "dash_user_days",
                  "dash_senders", "dash_state", "advisors", "staff_sessions", "staff_accounts"):
        op.drop_table(table)

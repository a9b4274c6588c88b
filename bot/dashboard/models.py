"""The dashboard's tables: staff accounts and sessions, advisors, and the analytics aggregates.

Aggregates never hold a sender id: a user is a row of `dash_senders`, named by a keyed hash
of the sender id (see `bot.dashboard.privacy`). The schema is created by the Alembic
migration `0010_dashboard`; these definitions are what the code reads and writes.
"""
from __future__ import annotations

import sqlalchemy as sa

from bot.storage import Base, DecimalString, UTCDateTime

metadata = Base.metadata

ROLES = ("staff", "admin")

staff_accounts = sa.Table(
    "staff_accounts", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    sa.Column("failed_logins", sa.Integer, nullable=False, default=0),
    sa.Column("locked_until", UTCDateTime),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("last_login_at", UTCDateTime),
)

staff_sessions = sa.Table(
    "staff_sessions", metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("staff_accounts.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("last_seen_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False, index=True),
)

advisors = sa.Table(
    "advisors", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("programme", sa.String(64)),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("contact", sa.String(128), nullable=False),
    sa.Column("languages", sa.String(64), nullable=False, default=""),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

dash_state = sa.Table(
    "dash_state", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

dash_senders = sa.Table(
    "dash_senders", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sender_hash", sa.String(32), nullable=False, unique=True),
    sa.Column("first_day", sa.Date),
    sa.Column("channel", sa.String(32)),
    sa.Column("language", sa.String(8)),
    sa.Column("country", sa.String(8)),
    sa.Column("last_ts", sa.Float),
    sa.Column("in_conversation", sa.Boolean, nullable=False, default=False),
)

dash_user_days = sa.Table(
    "dash_user_days", metadata,
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("sender_key", sa.Integer, primary_key=True),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("language", sa.String(8), nullable=False),
    sa.Column("programme", sa.String(64), nullable=False),
    sa.Column("conversations", sa.Integer, nullable=False),
    sa.Column("messages", sa.Integer, nullable=False),
    sa.Column("fallbacks", sa.Integer, nullable=False),
    sa.Column("is_new", sa.Boolean, nullable=False),
)

dash_label_days = sa.Table(
    "dash_label_days", metadata,
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("channel", sa.String(32), primary_key=True),
    sa.Column("language", sa.String(8), primary_key=True),
    sa.Column("programme", sa.String(64), primary_key=True),
    sa.Column("label", sa.String(64), primary_key=True),
    sa.Column("messages", sa.Integer, nullable=False),
)

dash_calculations = sa.Table(
    "dash_calculations", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sender_key", sa.Integer, nullable=False),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("day", sa.Date, nullable=False, index=True),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("language", sa.String(8), nullable=False),
    sa.Column("programme", sa.String(64), nullable=False),
    sa.Column("product", sa.String(64), nullable=False),
    sa.Column("amount", DecimalString),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("repayments", sa.Integer),
    sa.Column("frequency", sa.String(16), nullable=False),
)

dash_steps = sa.Table(
    "dash_steps", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sender_key", sa.Integer, nullable=False),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("step", sa.String(16), nullable=False),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("language", sa.String(8), nullable=False),
    sa.Column("programme", sa.String(64), nullable=False),
    sa.Index("ix_dash_steps_step_day", "step", "day"),
)

dash_unanswered = sa.Table(
    "dash_unanswered", metadata,
    sa.Column("question_id", sa.Integer, primary_key=True),
    sa.Column("similar_key", sa.String(40), nullable=False, index=True),
)

_rasa_metadata = sa.MetaData()  # kept apart: Rasa, not our migrations, owns `events`

AGGREGATES = (dash_user_days, dash_label_days, dash_calculations, dash_steps, dash_unanswered, dash_senders)

#: Indexes on Rasa's `events` table (created only if missing; Rasa owns the table).
EVENT_INDEXES = {
    "ix_dash_events_type_ts": ("type_name", "timestamp"),
    "ix_dash_events_sender_ts": ("sender_id", "timestamp"),
}


def unanswered_table() -> sa.Table:
    """The `unanswered_questions` table, as the ORM model in `bot.storage` defines it."""
    from bot.storage import UnansweredQuestion

    return UnansweredQuestion.__table__


def events_table() -> sa.Table:
    """Rasa's SQL tracker store table (`rasa.core.tracker_store.SQLTrackerStore.SQLEvent`)."""
    existing = _rasa_metadata.tables.get("events")
    if existing is not None:
        return existing
    return sa.Table(
        "events", _rasa_metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sender_id", sa.String(255), nullable=False, index=True),
        sa.Column("type_name", sa.String(255), nullable=False),
        sa.Column("timestamp", sa.Float),
        sa.Column("intent_name", sa.String(255)),
        sa.Column("action_name", sa.String(255)),
        sa.Column("data", sa.Text),
    )

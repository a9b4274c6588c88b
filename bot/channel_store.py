"""The channels' tables: deliveries already processed, delivery statuses, SMS continuations.

The schema is created by the Alembic revision `0003` (`bot/migrations/versions/0003_channels.py`).
"""
from __future__ import annotations

import sqlalchemy as sa

from bot.storage import Base, UTCDateTime, utcnow


class ChannelDelivery(Base):
    """One inbound delivery (a Telegram `update_id`, a Twilio `MessageSid`) already taken in."""

    __tablename__ = "channel_deliveries"
    channel = sa.Column(sa.String(16), primary_key=True)
    delivery_id = sa.Column(sa.String(64), primary_key=True)
    sender_id = sa.Column(sa.String(128), nullable=False)
    received_at = sa.Column(UTCDateTime, nullable=False, default=utcnow)
    state = sa.Column(sa.String(12), nullable=False, server_default="done")  # processing | done (0013)
    claimed_at = sa.Column(UTCDateTime)  # when the processing replica last renewed its lease
    __table_args__ = (sa.Index("ix_channel_deliveries_sender", "channel", "sender_id", "received_at"),)


class DeliveryStatus(Base):
    """The latest known state of one message the assistant sent."""

    __tablename__ = "delivery_statuses"
    id = sa.Column(sa.Integer, primary_key=True)
    channel = sa.Column(sa.String(16), nullable=False)
    message_id = sa.Column(sa.String(64))  # None when the provider never accepted the message
    recipient_id = sa.Column(sa.String(128), nullable=False)
    status = sa.Column(sa.String(16), nullable=False)
    error_code = sa.Column(sa.String(16))
    error = sa.Column(sa.String(200))
    attempts = sa.Column(sa.Integer, nullable=False, default=1)
    created_at = sa.Column(UTCDateTime, nullable=False, default=utcnow)
    updated_at = sa.Column(UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow, index=True)
    __table_args__ = (sa.UniqueConstraint("channel", "message_id", name="uq_delivery_statuses_message"),)


class SmsContinuation(Base):
    """The pages of a long SMS reply not sent yet: the user gets the next one by replying MORE."""

    __tablename__ = "sms_continuations"
    sender_id = sa.Column(sa.String(128), primary_key=True)
    pages = sa.Column(sa.Text, nullable=False)  # a JSON list of texts
    created_at = sa.Column(UTCDateTime, nullable=False, default=utcnow)

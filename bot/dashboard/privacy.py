"""Pseudonyms: the aggregates and the admin views name a user by a keyed hash, never by id.

The key is `DASHBOARD_PSEUDONYM_KEY` when set, else a random key created once and kept in the
database (`dash_state`), so every dashboard process and the aggregates agree on it. Without the
key a pseudonym cannot be turned back into a phone number or a Telegram id.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from functools import lru_cache

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot.dashboard.models import dash_senders, dash_state
from bot.storage import utcnow

_KEY_NAME = "pseudonym_key"


@lru_cache(maxsize=None)
def _stored_key(url: str, engine: Engine) -> bytes:
    query = sa.select(dash_state.c.value).where(dash_state.c.name == _KEY_NAME)
    with engine.connect() as db:
        value = db.execute(query).scalar()
    if value is None:
        try:
            with engine.begin() as db:
                db.execute(sa.insert(dash_state).values(name=_KEY_NAME, value=secrets.token_hex(32),
                                                        updated_at=utcnow()))
        except sa.exc.IntegrityError:
            pass  # another process created it first
        with engine.connect() as db:
            value = db.execute(query).scalar_one()
    return bytes.fromhex(value)


def key(engine: Engine) -> bytes:
    """The pseudonym key for the database of `engine`."""
    configured = os.environ.get("DASHBOARD_PSEUDONYM_KEY")
    if configured:
        return configured.encode("utf-8")
    return _stored_key(str(engine.url), engine)


def sender_hash(secret: bytes, sender_id: str) -> str:
    """The stored form of a sender id in the aggregates (32 hex characters)."""
    return hmac.new(secret, sender_id.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def pseudonym(secret: bytes, sender_id: str) -> str:
    """What staff see instead of a sender id: `user-` and 10 characters of its keyed hash."""
    return "user-" + sender_hash(secret, sender_id)[:10]


def forget(engine: Engine, sender_id: str, db: sa.engine.Connection | None = None) -> int:
    """Unlinks a user who asked to be forgotten from the aggregates; returns 1 if they were there.

    The counts they took part in stay; nothing in the dashboard leads back to them any more
    (if they write again they are a new user). `db` runs it in the caller's transaction (the
    key is read through `engine` first: on SQLite, read it before that transaction writes).
    """
    statement = sa.delete(dash_senders).where(dash_senders.c.sender_hash == sender_hash(key(engine), sender_id))
    if db is not None:
        return db.execute(statement).rowcount
    with engine.begin() as connection:
        return connection.execute(statement).rowcount

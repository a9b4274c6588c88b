"""The project's own tables (profiles, unanswered questions) and the database engine.

The embedded default is one SQLite file, `var/assistant.db`, which Rasa's SQL tracker store
shares. `DATABASE_URL` points everything at PostgreSQL in production. The schema is owned by
Alembic (`bot/migrations`): `python -m bot.storage upgrade` brings any database to the head.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
import os
import sys
from functools import lru_cache
from pathlib import Path
from typing import Optional

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import declarative_base, sessionmaker

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = f"sqlite:///{ROOT / 'var' / 'assistant.db'}"
CONNECT_TIMEOUT = 5  # seconds to reach PostgreSQL

Base = declarative_base()


class UTCDateTime(sa.types.TypeDecorator):
    """A timestamp stored in UTC and always returned with its time zone."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Optional[dt.datetime], dialect) -> Optional[dt.datetime]:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(dt.timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Optional[dt.datetime], dialect) -> Optional[dt.datetime]:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


class DecimalString(sa.types.TypeDecorator):
    """An exact decimal amount, stored as text (SQLite has no exact decimal type)."""

    impl = sa.String(40)
    cache_ok = True

    def process_bind_param(self, value: Optional[Decimal], dialect) -> Optional[str]:
        return None if value is None else str(Decimal(value))

    def process_result_value(self, value: Optional[str], dialect) -> Optional[Decimal]:
        return None if value is None else Decimal(value)


def utcnow() -> dt.datetime:
    """The current time, in UTC, with its time zone."""
    return dt.datetime.now(dt.timezone.utc)


class Profile(Base):
    """What the assistant remembers about one user between conversations."""

    __tablename__ = "profiles"
    sender_id = sa.Column(sa.String(128), primary_key=True)
    channel = sa.Column(sa.String(32), nullable=False, default="unknown")
    language = sa.Column(sa.String(8))
    country = sa.Column(sa.String(2))
    opted_out = sa.Column(sa.Boolean, nullable=False, default=False)
    created_at = sa.Column(UTCDateTime, nullable=False, default=utcnow)
    updated_at = sa.Column(UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow)


class UnansweredQuestion(Base):
    """A message the assistant could not answer, kept for programme staff without its sender."""

    __tablename__ = "unanswered_questions"
    id = sa.Column(sa.Integer, primary_key=True)
    text = sa.Column(sa.Text, nullable=False)
    language = sa.Column(sa.String(8))
    reason = sa.Column(sa.String(16), nullable=False)  # fallback | out_of_scope
    programme = sa.Column(sa.String(64))
    created_at = sa.Column(UTCDateTime, nullable=False, default=utcnow, index=True)
    handled = sa.Column(sa.Boolean, nullable=False, default=False)


def database_url() -> str:
    """The SQLAlchemy URL of the project's database (env `DATABASE_URL`, else the SQLite file)."""
    return os.environ.get("DATABASE_URL") or DEFAULT_URL


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()


@lru_cache(maxsize=None)
def engine(url: Optional[str] = None) -> Engine:
    """The shared engine for `url` (default: `database_url()`)."""
    url = url or database_url()
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    options = {"future": True, "pool_pre_ping": True,
               "hide_parameters": True}  # parameters hold phone numbers and message texts: never in a log
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
        # an unreachable server fails in seconds, so a webhook can answer 503 before the provider gives up
        options["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT}
    return sa.create_engine(url, **options)


def session(url: Optional[str] = None):
    """A new ORM session bound to the project's database."""
    return sessionmaker(engine(url), future=True, expire_on_commit=False)()


def upgrade(url: Optional[str] = None, revision: str = "head") -> None:
    """Migrates the database at `url` to `revision` with Alembic."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(ROOT / "bot" / "migrations"))
    config.attributes["url"] = url or database_url()
    engine(url)  # creates the SQLite folder
    command.upgrade(config, revision)


if __name__ == "__main__":
    if sys.argv[1:2] == ["upgrade"]:
        upgrade()
        print(f"database ready: {engine().url.render_as_string(hide_password=True)}")
    else:
        sys.exit("usage: python -m bot.storage upgrade")

"""Alembic migrations on this machine's real PostgreSQL: from empty, from the previous release
with data in it, and one step back down. Each test gets a database of its own, dropped after.
"""
from __future__ import annotations

import datetime as dt
import importlib
import pkgutil
import uuid
from pathlib import Path
from typing import Dict, List

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

import bot
from bot import storage
from tests.test_dashboard_support import drop_postgres_database, postgres_database

# The schema of the last release, before the advisor handoff (0011) and what came after it.
PREVIOUS_RELEASE = "0010"
UTC = dt.timezone.utc


def alembic_config(url: str) -> Config:
    """The configuration `bot.storage.upgrade` uses, for the commands it does not wrap."""
    config = Config()
    config.set_main_option("script_location", str(storage.ROOT / "bot" / "migrations"))
    config.attributes["url"] = url
    return config


def chain(url: str) -> List[str]:
    """Every revision, oldest first."""
    script = ScriptDirectory.from_config(alembic_config(url))
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def current(url: str) -> str:
    """The revision the database is at."""
    with storage.engine(url).connect() as db:
        return MigrationContext.configure(db).get_current_revision()


def table_names(url: str) -> set:
    """The tables of the database, Alembic's bookkeeping left out."""
    return set(sa.inspect(storage.engine(url)).get_table_names()) - {"alembic_version"}


def schema(url: str) -> Dict[str, tuple]:
    """Each table's columns (name, type, nullable) and index names: what a migration changes."""
    inspector = sa.inspect(storage.engine(url))
    return {name: (sorted((c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(name)),
                   sorted(i["name"] for i in inspector.get_indexes(name)))
            for name in table_names(url)}


def kept(before: Dict[str, list], after: Dict[str, list]) -> Dict[str, list]:
    """`after` restricted to the columns `before` has (later revisions may add columns)."""
    return {name: [{column: row[column] for column in old} for row, old in zip(after[name], before[name])]
            + after[name][len(before[name]):] for name in before}


def snapshot(url: str, tables) -> Dict[str, list]:
    """Every row of `tables`, in a stable order."""
    metadata = sa.MetaData()
    rows = {}
    with storage.engine(url).connect() as db:
        for name in sorted(tables):
            table = sa.Table(name, metadata, autoload_with=db)
            order = list(table.primary_key.columns) or list(table.columns)
            rows[name] = [dict(r._mapping) for r in db.execute(sa.select(table).order_by(*order))]
    return rows


def import_models() -> None:
    """Imports every module of `bot` that declares tables, so `Base.metadata` is complete."""
    root = Path(bot.__file__).parent
    for module in pkgutil.walk_packages([str(root)], "bot."):
        source = root.joinpath(*module.name.split(".")[1:])
        path = source / "__init__.py" if module.ispkg else source.with_suffix(".py")
        if "migrations" in module.name or not path.exists():
            continue
        text = path.read_text(encoding="utf-8")
        if "__tablename__" in text or "Base.metadata" in text:
            importlib.import_module(module.name)


@pytest.fixture
def pg_url():
    """A new, empty PostgreSQL database."""
    name = f"migrations_test_{uuid.uuid4().hex[:10]}"
    url = postgres_database(name)
    if url is None:
        pytest.fail("PostgreSQL is not reachable on 127.0.0.1:5432; these tests need it")
    yield url
    drop_postgres_database(name)


def not_rasas(item, name, kind, reflected, compare_to) -> bool:
    """Leaves Rasa's `events` table (and its indexes) out of the comparison with our models."""
    table = item if kind == "table" else getattr(item, "table", None)
    return getattr(table, "name", name) != "events"


def create_rasa_events(url: str) -> None:
    """Rasa's `events` table, as the tracker store creates it (migration 0010 indexes it)."""
    from rasa.core.tracker_store import SQLTrackerStore

    SQLTrackerStore.Base.metadata.create_all(storage.engine(url))


def fill_previous_release(url: str) -> None:
    """Rows of every kind the previous release stores, written as that schema has them."""
    now = dt.datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
    rows = {
        "profiles": [{"sender_id": "+21650111222", "channel": "sms", "language": "ar", "country": "TN",
                      "opted_out": False, "created_at": now, "updated_at": now},
                     {"sender_id": "77001", "channel": "telegram", "language": "fa", "country": None,
                      "opted_out": True, "created_at": now, "updated_at": now}],
        "unanswered_questions": [{"text": "هل يمكنني الحصول على قرض لمشروع زراعي؟", "language": "ar",
                                  "reason": "fallback", "programme": "tn-reintegration", "created_at": now,
                                  "handled": False}],
        "reminders": [{"sender_id": "+21650111222", "channel": "sms", "programme": "tn-reintegration",
                       "due_date": dt.date(2025, 4, 1), "amount": "1250.50", "currency": "TND",
                       "send_at": now + dt.timedelta(days=28), "status": "pending", "attempts": 0,
                       "created_at": now}],
        "channel_deliveries": [{"channel": "telegram", "delivery_id": "870000001", "sender_id": "77001",
                                "received_at": now}],
        "delivery_statuses": [{"channel": "sms", "message_id": "SM0001", "recipient_id": "+21650111222",
                               "status": "delivered", "attempts": 1, "created_at": now, "updated_at": now}],
        "sms_continuations": [{"sender_id": "+21650111222", "pages": '["page 2", "page 3"]', "created_at": now}],
        "staff_accounts": [{"username": "amina", "password_hash": "$argon2id$v=19$x", "role": "admin",
                            "active": True, "failed_logins": 0, "created_at": now, "updated_at": now}],
        "advisors": [{"name": "Omar Kacem", "programme": None, "channel": "sms", "contact": "+21698000222",
                      "languages": "ar,fr", "active": True, "created_at": now, "updated_at": now}],
        "dash_state": [{"name": "refreshed_to", "value": "123.5", "updated_at": now}],
        "events": [{"sender_id": "77001", "type_name": "user", "timestamp": 1740821400.25, "intent_name": "greet",
                    "action_name": None, "data": '{"event": "user", "text": "سلام"}'}],
    }
    metadata = sa.MetaData()
    with storage.engine(url).begin() as db:
        for name, values in rows.items():
            db.execute(sa.Table(name, metadata, autoload_with=db).insert(), values)


def test_empty_database_to_head_matches_the_code(pg_url):
    """From nothing to the head, the way `make run-prod` prepares its database, twice (idempotent);
    the result is exactly the schema the code's table definitions describe."""
    from bot.run_prod import prepare_database

    prepare_database(pg_url)
    prepare_database(pg_url)
    revisions = chain(pg_url)
    assert current(pg_url) == revisions[-1]
    import_models()
    with storage.engine(pg_url).connect() as db:
        context = MigrationContext.configure(db, opts={"compare_type": True, "include_object": not_rasas})
        assert compare_metadata(context, storage.Base.metadata) == []
    indexes = {i["name"] for i in sa.inspect(storage.engine(pg_url)).get_indexes("events")}
    assert {"ix_dash_events_type_ts", "ix_dash_events_sender_ts"} <= indexes


def test_previous_release_with_data_to_head_and_one_step_back(pg_url):
    """A database of the previous release, with rows in every table, upgrades to the head
    without losing or changing a row, and the head's last step downgrades and upgrades again."""
    create_rasa_events(pg_url)
    storage.upgrade(pg_url, PREVIOUS_RELEASE)
    fill_previous_release(pg_url)
    old_tables = table_names(pg_url)
    before = snapshot(pg_url, old_tables)
    assert all(before[name] for name in ("profiles", "reminders", "advisors", "events"))

    storage.upgrade(pg_url)
    revisions = chain(pg_url)
    assert current(pg_url) == revisions[-1]
    assert table_names(pg_url) > old_tables, "the later revisions add tables"
    assert kept(before, snapshot(pg_url, old_tables)) == before

    head = schema(pg_url)
    command.downgrade(alembic_config(pg_url), "-1")
    assert current(pg_url) == revisions[-2]
    assert old_tables <= table_names(pg_url) and schema(pg_url) != head
    assert kept(before, snapshot(pg_url, old_tables)) == before
    storage.upgrade(pg_url)
    assert current(pg_url) == revisions[-1] and schema(pg_url) == head
    assert kept(before, snapshot(pg_url, old_tables)) == before


def test_every_revision_downgrades_and_upgrades_again(pg_url):
    """The stairway: each revision up, one down, up again, from the first to the head; each
    downgrade undoes exactly what its upgrade did."""
    create_rasa_events(pg_url)
    config = alembic_config(pg_url)
    previous = schema(pg_url)
    for revision in chain(pg_url):
        storage.upgrade(pg_url, revision)
        after = schema(pg_url)
        command.downgrade(config, "-1")
        assert schema(pg_url) == previous, f"downgrading {revision} does not restore the schema before it"
        storage.upgrade(pg_url, revision)
        assert current(pg_url) == revision and schema(pg_url) == after
        previous = after
    command.downgrade(config, "base")
    assert table_names(pg_url) == {"events"}

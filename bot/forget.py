"""Deleting everything the project's tables hold about one user (`forget_me`).

The conversation itself is deleted by `bot.tracker_store.PrivacySQLTrackerStore` at the end of
the same turn. Unanswered questions are stored without their sender and stay anonymous.
"""
from __future__ import annotations

from typing import Dict, List

import sqlalchemy as sa

from bot.storage import Base, engine, session

# Tables of the project that name a user, and the column that does.
USER_COLUMNS = ("sender_id",)


def user_tables() -> List[sa.Table]:
    """Every table of the project's schema with a sender id column."""
    metadata = sa.MetaData()
    metadata.reflect(bind=engine())
    return [t for name, t in metadata.tables.items() if name != "events"
            and any(c in t.c for c in USER_COLUMNS)]


def forget(sender_id: str) -> Dict[str, int]:
    """Deletes the user's rows everywhere; returns the number of rows deleted per table."""
    deleted = {}
    with session() as db, db.begin():
        for table in user_tables():
            column = next(table.c[c] for c in USER_COLUMNS if c in table.c)
            deleted[table.name] = db.execute(sa.delete(table).where(column == sender_id)).rowcount
    return deleted

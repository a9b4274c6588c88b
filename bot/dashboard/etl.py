"""Turns Rasa's tracker store events into the dashboard's daily aggregates, incrementally.

Each run reads the events after the last one it processed (by id), follows every sender's
state (language and country slots, conversation), and adds to:

- `dash_user_days`: one row per user and day (conversations, messages, fallbacks, new or not);
- `dash_label_days`: messages per day, channel, language, programme and label;
- `dash_calculations`: one row per repayment calculation (the `loan_calculation` slot);
- `dash_steps`: the funnel steps (asked about loans, used the calculator, asked for an advisor);
- `dash_unanswered`: the "similar" key of each unanswered question.

Several dashboard processes may refresh at once: a batch is written only if the cursor it
started from is still the stored one (an optimistic check in the write transaction). Events
younger than `lag` seconds are left for the next run, since a turn still being saved may
have taken a smaller id than one already committed.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import time
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Dict, Iterable, List, Optional, Tuple
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from bot.dashboard import models as m
from bot.dashboard import privacy
from bot.storage import utcnow
from bot.text import normalize

logger = logging.getLogger(__name__)

SESSION_GAP = 240 * 60  # Rasa's session_expiration_time in bot/domain/core.yml, in seconds
UNKNOWN = "unknown"
FALLBACK_LABEL = "nlu_fallback"
ADVISOR_LABEL = "request_advisor"
LOAN_PREFIX = "faq/loan_"
TRACKED_SLOTS = ("language", "country", "loan_calculation")
_STATE = "etl"


def timezone() -> ZoneInfo:
    """The time zone that cuts days (`DASHBOARD_TIMEZONE`, default UTC)."""
    return ZoneInfo(os.environ.get("DASHBOARD_TIMEZONE", "UTC"))


@dataclass
class ProgrammeMap:
    """What the aggregates need from the programme files: country to programme, currencies."""

    by_country: Dict[str, str]
    currency: Dict[str, str]
    only: Optional[str] = None

    @classmethod
    def load(cls) -> "ProgrammeMap":
        """Reads `programmes/*.yml`."""
        from bot.programme import load_all

        programmes = load_all()
        only = next(iter(programmes)) if len(programmes) == 1 else None
        return cls({p.country: p.id for p in programmes.values()},
                   {p.id: p.currency for p in programmes.values()}, only)

    def of_country(self, country: Optional[str]) -> str:
        """The programme serving `country` (the only programme if there is one), else "unknown"."""
        return self.by_country.get(country or "", self.only or UNKNOWN)


@dataclass
class Sender:
    """What the refresh remembers about one sender between events."""

    sender_hash: str
    first_day: Optional[dt.date] = None
    channel: Optional[str] = None
    language: Optional[str] = None
    country: Optional[str] = None
    last_ts: Optional[float] = None
    in_conversation: bool = False
    turn: Optional["Turn"] = None


@dataclass
class Turn:
    """One user message, counted once the slots its turn sets are known."""

    ts: float
    day: dt.date
    label: str
    channel: str
    new_conversation: bool
    language: Optional[str] = None
    country: Optional[str] = None


@dataclass
class Batch:
    """What one batch adds to the aggregates, keyed by sender hash until ids are known."""

    user_days: Dict[Tuple[dt.date, str], Dict[str, Any]] = field(default_factory=dict)
    label_days: Dict[Tuple, int] = field(default_factory=dict)
    calculations: List[Dict[str, Any]] = field(default_factory=list)
    steps: List[Dict[str, Any]] = field(default_factory=list)


def similar_key(text: str, language: Optional[str]) -> str:
    """Groups unanswered questions that read the same once case, punctuation and spacing go."""
    words = "".join(c if not unicodedata.category(c).startswith(("P", "S")) else " "
                    for c in normalize(text).casefold()).split()
    return hashlib.sha1(f"{language or ''}|{' '.join(words)}".encode("utf-8")).hexdigest()[:40]


def label_of(intent: Optional[str], data: Dict[str, Any]) -> str:
    """The label of a user message: the intent, or `faq/<topic>` for the retrieval intent."""
    parse = data.get("parse_data") or {}
    intent = intent or (parse.get("intent") or {}).get("name")
    if intent == "faq":
        response = ((parse.get("response_selector") or {}).get("faq") or {}).get("response") or {}
        key = response.get("intent_response_key")
        if isinstance(key, str) and key.startswith("faq/"):
            return key[:64]
    return (intent or UNKNOWN)[:64]


def _short(value: Any, size: int) -> Optional[str]:
    return value[:size] if isinstance(value, str) and value else None


def _decimal(value: Any) -> Optional[Decimal]:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() else None


class Refresher:
    """Brings the aggregates up to date with the events table of one database."""

    def __init__(self, engine: Engine, programmes: Optional[ProgrammeMap] = None,
                 zone: Optional[ZoneInfo] = None) -> None:
        self.engine = engine
        self.programmes = programmes or ProgrammeMap.load()
        self.zone = zone or timezone()
        self.events = m.events_table()
        self.questions = m.unanswered_table()
        self.batch_size = 5000 if engine.dialect.name == "sqlite" else 20000

    # -- public -----------------------------------------------------------------------------

    def run(self, lag: float = 60.0, max_batches: Optional[int] = None) -> int:
        """Processes every event older than `lag` seconds; returns how many events it read."""
        with_events = sa.inspect(self.engine).has_table("events")
        if with_events:
            ensure_event_indexes(self.engine)
        total, batches = 0, 0
        while max_batches is None or batches < max_batches:
            read, done = self._batch(time.time() - lag, with_events)
            total += read
            batches += 1
            if done:
                break
        return total

    def rebuild(self) -> int:
        """Empties the aggregates and processes every event again (after a time zone change)."""
        with self.engine.begin() as db:
            for table in m.AGGREGATES:
                db.execute(sa.delete(table))
            db.execute(sa.delete(m.dash_state).where(m.dash_state.c.name == _STATE))
        return self.run()

    # -- one batch --------------------------------------------------------------------------

    def _cursor(self) -> Tuple[Optional[str], Dict[str, int]]:
        with self.engine.connect() as db:
            raw = db.execute(sa.select(m.dash_state.c.value).where(m.dash_state.c.name == _STATE)).scalar()
        return raw, (json.loads(raw) if raw else {"event": 0, "question": 0})

    def _fetch(self, db: Connection, after: int) -> List[Any]:
        e = self.events.c
        wanted = sa.or_(e.type_name.in_(["user", "session_started"]),
                        sa.and_(e.type_name == "slot", e.action_name.in_(TRACKED_SLOTS)))
        query = (sa.select(e.id, e.sender_id, e.type_name, e.timestamp, e.intent_name, e.action_name, e.data)
                 .where(e.id > after, wanted).order_by(e.id).limit(self.batch_size))
        return db.execute(query).all()

    def _batch(self, horizon: float, with_events: bool = True) -> Tuple[int, bool]:
        raw, cursor = self._cursor()
        secret = privacy.key(self.engine)
        with self.engine.connect() as db:
            rows = self._fetch(db, cursor["event"]) if with_events else []
            questions = db.execute(
                sa.select(self.questions.c.id, self.questions.c.text, self.questions.c.language)
                .where(self.questions.c.id > cursor["question"]).order_by(self.questions.c.id)
                .limit(self.batch_size)).all()
            ready = []
            for row in rows:
                if row.timestamp is not None and row.timestamp > horizon:
                    break
                ready.append(row)
            hashes = {row.sender_id: privacy.sender_hash(secret, row.sender_id) for row in ready}
            senders = self._load_senders(db, set(hashes.values()))
        batch = Batch()
        for row in ready:
            sender = senders.setdefault(hashes[row.sender_id], Sender(hashes[row.sender_id]))
            self._apply(sender, row, batch)
        for sender in senders.values():
            self._flush(sender, batch)
        new_cursor = {"event": ready[-1].id if ready else cursor["event"],
                      "question": questions[-1].id if questions else cursor["question"]}
        if new_cursor == cursor:
            return 0, True
        with self.engine.begin() as db:
            if not self._advance(db, raw, new_cursor):
                logger.info("another process refreshed the dashboard aggregates; retrying")
                return 0, False
            self._write(db, senders, batch)
            if questions:
                db.execute(sa.insert(m.dash_unanswered), [
                    {"question_id": q.id, "similar_key": similar_key(q.text or "", q.language)} for q in questions])
        events_done = len(ready) < len(rows) or len(rows) < self.batch_size
        return len(ready), events_done and len(questions) < self.batch_size

    def _advance(self, db: Connection, raw: Optional[str], cursor: Dict[str, int]) -> bool:
        value, now = json.dumps(cursor), utcnow()
        if raw is None:
            try:
                with db.begin_nested():
                    db.execute(sa.insert(m.dash_state).values(name=_STATE, value=value, updated_at=now))
                return True
            except sa.exc.IntegrityError:
                return False
        result = db.execute(sa.update(m.dash_state)
                            .where(m.dash_state.c.name == _STATE, m.dash_state.c.value == raw)
                            .values(value=value, updated_at=now))
        return result.rowcount == 1

    def _load_senders(self, db: Connection, hashes: Iterable[str]) -> Dict[str, Sender]:
        found: Dict[str, Sender] = {}
        t = m.dash_senders.c
        wanted = sorted(hashes)
        for start in range(0, len(wanted), 500):
            for row in db.execute(sa.select(m.dash_senders).where(t.sender_hash.in_(wanted[start:start + 500]))):
                found[row.sender_hash] = Sender(row.sender_hash, row.first_day, row.channel, row.language,
                                                row.country, row.last_ts, row.in_conversation)
        return found

    # -- following one sender ---------------------------------------------------------------

    def _apply(self, sender: Sender, row: Any, batch: Batch) -> None:
        if row.type_name == "session_started":
            self._flush(sender, batch)
            sender.in_conversation = False
            return
        try:
            data = json.loads(row.data or "{}")
        except ValueError:
            return
        ts = row.timestamp if row.timestamp is not None else data.get("timestamp") or 0.0
        if row.type_name == "user":
            self._user(sender, ts, row.intent_name, data, batch)
        elif row.action_name == "loan_calculation":
            self._calculation(sender, ts, data.get("value"), batch)
        elif row.action_name in ("language", "country"):
            value = _short(data.get("value"), 8)
            setattr(sender, row.action_name, value)
            if sender.turn is not None:
                setattr(sender.turn, row.action_name, value)

    def _user(self, sender: Sender, ts: float, intent: Optional[str], data: Dict[str, Any], batch: Batch) -> None:
        self._flush(sender, batch)
        if (data.get("metadata") or {}).get("is_external") or (intent or "").startswith("EXTERNAL_"):
            return
        day = dt.datetime.fromtimestamp(ts, self.zone).date()
        new = not sender.in_conversation or sender.last_ts is None or ts - sender.last_ts > SESSION_GAP
        sender.channel = _short(data.get("input_channel"), 32) or sender.channel or UNKNOWN
        sender.in_conversation, sender.last_ts = True, ts
        if sender.first_day is None:
            sender.first_day = day
        sender.turn = Turn(ts, day, label_of(intent, data), sender.channel, new, sender.language, sender.country)

    def _flush(self, sender: Sender, batch: Batch) -> None:
        turn, sender.turn = sender.turn, None
        if turn is None:
            return
        language = turn.language or UNKNOWN
        programme = self.programmes.of_country(turn.country)
        key = (turn.day, sender.sender_hash)
        row = batch.user_days.get(key)
        if row is None:
            row = batch.user_days[key] = {"day": turn.day, "sender_hash": sender.sender_hash, "conversations": 0,
                                          "messages": 0, "fallbacks": 0, "is_new": turn.day == sender.first_day}
        row.update(channel=turn.channel, language=language, programme=programme)
        row["conversations"] += int(turn.new_conversation)
        row["messages"] += 1
        row["fallbacks"] += int(turn.label == FALLBACK_LABEL)
        label_key = (turn.day, turn.channel, language, programme, turn.label)
        batch.label_days[label_key] = batch.label_days.get(label_key, 0) + 1
        step = "loan" if turn.label.startswith(LOAN_PREFIX) else "advisor" if turn.label == ADVISOR_LABEL else None
        if step:
            batch.steps.append({"sender_hash": sender.sender_hash, "ts": turn.ts, "day": turn.day, "step": step,
                                "channel": turn.channel, "language": language, "programme": programme})

    def _calculation(self, sender: Sender, ts: float, value: Any, batch: Batch) -> None:
        if not isinstance(value, dict):
            return
        day = dt.datetime.fromtimestamp(ts, self.zone).date()
        programme = _short(value.get("programme"), 64) or self.programmes.of_country(sender.country)
        segment = {"channel": sender.channel or UNKNOWN, "language": sender.language or UNKNOWN,
                   "programme": programme}
        try:
            repayments = int(value.get("repayments"))
        except (TypeError, ValueError):
            repayments = None
        batch.calculations.append({
            "sender_hash": sender.sender_hash, "ts": ts, "day": day, **segment,
            "product": _short(value.get("product"), 64) or UNKNOWN, "amount": _decimal(value.get("amount")),
            "currency": self.programmes.currency.get(programme, "")[:3], "repayments": repayments,
            "frequency": _short(value.get("frequency"), 16) or UNKNOWN,
        })
        batch.steps.append({"sender_hash": sender.sender_hash, "ts": ts, "day": day, "step": "calc", **segment})

    # -- writing ----------------------------------------------------------------------------

    def _write(self, db: Connection, senders: Dict[str, Sender], batch: Batch) -> None:
        states = [{"sender_hash": s.sender_hash, "first_day": s.first_day, "channel": s.channel,
                   "language": s.language, "country": s.country, "last_ts": s.last_ts,
                   "in_conversation": s.in_conversation} for s in senders.values()]
        upsert(db, m.dash_senders, states, ["sender_hash"],
               replace=["first_day", "channel", "language", "country", "last_ts", "in_conversation"])
        ids = self._sender_ids(db, senders)
        for rows in (batch.calculations, batch.steps):
            for row in rows:
                row["sender_key"] = ids[row.pop("sender_hash")]
        user_days = [{**{k: v for k, v in row.items() if k != "sender_hash"}, "sender_key": ids[row["sender_hash"]]}
                     for row in batch.user_days.values()]
        upsert(db, m.dash_user_days, user_days, ["day", "sender_key"],
               increment=["conversations", "messages", "fallbacks"], replace=["channel", "language", "programme"])
        labels = [dict(zip(("day", "channel", "language", "programme", "label"), key), messages=count)
                  for key, count in batch.label_days.items()]
        upsert(db, m.dash_label_days, labels, ["day", "channel", "language", "programme", "label"],
               increment=["messages"])
        for table, rows in ((m.dash_calculations, batch.calculations), (m.dash_steps, batch.steps)):
            for start in range(0, len(rows), 5000):
                db.execute(sa.insert(table), rows[start:start + 5000])

    def _sender_ids(self, db: Connection, senders: Dict[str, Sender]) -> Dict[str, int]:
        ids: Dict[str, int] = {}
        wanted = sorted(senders)
        t = m.dash_senders.c
        for start in range(0, len(wanted), 500):
            ids.update(db.execute(sa.select(t.sender_hash, t.id).where(t.sender_hash.in_(wanted[start:start + 500]))).all())
        return ids


def upsert(db: Connection, table: sa.Table, rows: List[Dict[str, Any]], keys: List[str],
           increment: Iterable[str] = (), replace: Iterable[str] = ()) -> None:
    """Inserts `rows`; on a key conflict adds the `increment` columns and overwrites `replace`."""
    if not rows:
        return
    dialect = {"postgresql": postgresql, "sqlite": sqlite}.get(db.dialect.name)
    if dialect is None:
        raise NotImplementedError(f"the dashboard supports SQLite and PostgreSQL, not {db.dialect.name}")
    size = max(1, 3000 // len(rows[0]))
    for start in range(0, len(rows), size):
        statement = dialect.insert(table).values(rows[start:start + size])
        changes = {name: table.c[name] + statement.excluded[name] for name in increment}
        changes.update({name: statement.excluded[name] for name in replace})
        db.execute(statement.on_conflict_do_update(index_elements=keys, set_=changes))


def ensure_event_indexes(engine: Engine) -> None:
    """Creates the dashboard's indexes on Rasa's `events` table if they are missing."""
    if getattr(engine, "_dashboard_indexes", False):
        return
    with engine.begin() as db:
        for name, columns in m.EVENT_INDEXES.items():
            db.execute(sa.text(f"CREATE INDEX IF NOT EXISTS {name} ON events ({', '.join(columns)})"))
    engine._dashboard_indexes = True


def refresh(engine: Engine, lag: float = 60.0) -> int:
    """Brings the aggregates of `engine`'s database up to date; returns the events read."""
    return Refresher(engine).run(lag=lag)

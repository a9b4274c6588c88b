"""What the Telegram and Twilio channels do the same way around a delivery.

Inbound: a delivery (Telegram `update_id`, Twilio `MessageSid`) is processed once, under a lease.
It is claimed as `processing` before it is handled and marked `done` after; while it runs, its
replica renews the claim every third of `LEASE_SECONDS`. A redelivery of a `done` claim is a
duplicate; of a claim whose lease ran out, a message whose replica died (kill -9): it is
processed again; of a claim still renewed, a message another replica is working on: the
caller answers it as the provider needs (see `process_once`). A database that cannot be
reached gets the provider a 503 before anything is written.

Outbound: a send is retried with backoff on transient errors, its outcome is recorded as a
delivery status and logged, and it never raises into the server. Also here: the pages of a long SMS waiting for MORE, long texts split at
paragraphs, and the renderer for a reply the channel sends itself (media, STOP, HELP).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import math
import os
import random
import re
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, List, Optional, Set, Tuple

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from bot.channel_store import ChannelDelivery, DeliveryStatus, SmsContinuation
from bot.storage import engine, session, utcnow
from channels.logs import describe, load_key, private_exc_info

logger = logging.getLogger(__name__)

# A claim not renewed for this long belongs to a replica that died. Renewed every third of it
# while the message is handled, so it bounds how soon a dead replica's message is taken over,
# not how long a turn may take; 10 s lets a Twilio retry (all within Twilio's 15 s) wait it out.
LEASE_SECONDS = float(os.environ.get("DELIVERY_LEASE_SECONDS") or 10)
PROCESSING, DONE = "processing", "done"
NEW, RETAKEN, DUPLICATE, BUSY = "new", "retaken", "duplicate", "busy"
_POLL = 0.5  # seconds between looks at a claim another replica holds
_running: Set[asyncio.Task] = set()  # handled messages, kept alive if their request goes away

ATTEMPTS = 3
BASE_DELAY = 0.5  # seconds before the first retry; doubled each time, with jitter
MAX_DELAY = 10.0  # a provider asking to wait longer than this is not waited for

# Rank of each status: a late callback never moves a message back (delivered, then "sent").
STATUS_RANK = {"accepted": 1, "scheduled": 1, "queued": 1, "sending": 2, "sent": 3,
               "delivered": 4, "undelivered": 4, "failed": 4, "canceled": 4, "read": 5}


# ---- inbound ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Claim:
    """What a delivery's claim found: NEW, RETAKEN (its lease had run out), DUPLICATE (done) or
    BUSY (another replica renews it), and the seconds left on a busy lease."""

    state: str
    seconds_left: float = 0.0


def _insert_claim(dialect: str, values: dict) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING, in the dialect of the database."""
    table = ChannelDelivery.__table__
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        return None
    return insert(table).values(**values).on_conflict_do_nothing(index_elements=["channel", "delivery_id"])


def _try_claim(channel: str, delivery_id: str, sender_id: str, lease: float) -> Optional[Claim]:
    table = ChannelDelivery.__table__
    key = sa.and_(table.c.channel == channel, table.c.delivery_id == delivery_id)
    now = utcnow()
    values = dict(channel=channel, delivery_id=delivery_id, sender_id=sender_id, received_at=now,
                  state=PROCESSING, claimed_at=now)
    with engine().begin() as db:
        insert = _insert_claim(db.dialect.name, values)
        if insert is not None:
            inserted = db.execute(insert).rowcount == 1
        else:
            try:
                with db.begin_nested():
                    db.execute(sa.insert(table).values(**values))
                inserted = True
            except IntegrityError:
                inserted = False
        if inserted:
            return Claim(NEW)
        # Atomic take-over: of two replicas, the second finds claimed_at renewed and updates nothing.
        retaken = db.execute(sa.update(table).where(
            key, table.c.state == PROCESSING,
            sa.or_(table.c.claimed_at.is_(None), table.c.claimed_at < now - dt.timedelta(seconds=lease)),
        ).values(claimed_at=now)).rowcount
        if retaken:
            return Claim(RETAKEN)
        row = db.execute(sa.select(table.c.state, table.c.claimed_at).where(key)).first()
    if row is None:  # released between our statements
        return None
    if row.state != PROCESSING:
        return Claim(DUPLICATE)
    return Claim(BUSY, max(0.0, lease - (now - row.claimed_at).total_seconds()))


def _claim(channel: str, delivery_id: str, sender_id: str, lease: float) -> Claim:
    for _ in range(3):
        claim = _try_claim(channel, delivery_id, sender_id, lease)
        if claim is not None:
            if claim.state == NEW:
                load_key()  # the database answers: the log pseudonyms' key, once
            return claim
    return Claim(BUSY, lease)


def _renew(channel: str, delivery_id: str) -> None:
    table = ChannelDelivery.__table__
    with engine().begin() as db:
        db.execute(sa.update(table).where(table.c.channel == channel, table.c.delivery_id == delivery_id,
                                          table.c.state == PROCESSING).values(claimed_at=utcnow()))


def _finish(channel: str, delivery_id: str) -> None:
    table = ChannelDelivery.__table__
    with engine().begin() as db:
        db.execute(sa.update(table).where(table.c.channel == channel, table.c.delivery_id == delivery_id)
                   .values(state=DONE))


def _release(channel: str, delivery_id: str) -> None:
    table = ChannelDelivery.__table__
    with engine().begin() as db:
        db.execute(sa.delete(table).where(table.c.channel == channel, table.c.delivery_id == delivery_id,
                                          table.c.state == PROCESSING))


async def claim_delivery(channel: str, delivery_id: str, sender_id: str, wait: float = 0.0) -> Claim:
    """Claims a delivery. A claim another replica holds is looked at again for up to `wait`
    seconds, until it is done or its lease runs out. Raises when the database cannot be reached."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        claim = await asyncio.to_thread(_claim, channel, str(delivery_id)[:64], sender_id, LEASE_SECONDS)
        if claim.state != BUSY or loop.time() >= deadline:
            return claim
        await asyncio.sleep(min(_POLL, max(0.05, deadline - loop.time())))


async def _keep_claim(channel: str, delivery_id: str) -> None:
    """Renews the lease of a delivery being handled until cancelled."""
    while True:
        await asyncio.sleep(LEASE_SECONDS / 3)
        try:
            await asyncio.to_thread(_renew, channel, delivery_id)
        except Exception as error:  # the next renewal may succeed; if none does, the lease runs out
            logger.warning("%s: could not renew the lease of delivery %s (%s)", channel, delivery_id, describe(error))


async def _handle_claimed(channel: str, delivery_id: str, work: Callable[[], Awaitable[str]]) -> Tuple[str, int]:
    keeper = asyncio.ensure_future(_keep_claim(channel, delivery_id))
    try:
        effect = await work()
    except Exception as error:
        keeper.cancel()
        logger.error("%s: delivery %s failed; released for the provider's retry", channel, delivery_id,
                     exc_info=private_exc_info(error))
        try:
            await asyncio.to_thread(_release, channel, delivery_id)
        except Exception as failure:  # the same dead database: the claim is no longer renewed
            logger.error("%s: could not release delivery %s (%s); a retry after %.0fs processes it",
                         channel, delivery_id, describe(failure), LEASE_SECONDS)
        return "error", 503
    finally:
        keeper.cancel()
    try:
        await asyncio.to_thread(_finish, channel, delivery_id)
    except Exception as error:  # handled all the same; only a redelivery after the lease would run twice
        logger.error("%s: delivery %s handled, but not marked done (%s)", channel, delivery_id, describe(error))
    return effect, 200


async def process_once(channel: str, delivery_id: Any, sender_id: str, work: Callable[[], Awaitable[str]],
                       wait: float = 0.0, busy: Tuple[str, int] = ("busy", 503)) -> Tuple[str, int]:
    """Runs `work` for a delivery unless it was handled already: (effect, HTTP status).

    `work` returns what was done; an exception from it releases the claim and gives 503, for
    the provider's retry. A database that cannot be reached gives 503 before anything is
    written. A delivery another replica handles gives `busy` once `wait` seconds have passed
    (its lease still renewed: that replica is alive). Once claimed, `work` runs to the end even
    if the provider hangs up, so a message is never left half handled.
    """
    delivery_id = str(delivery_id)[:64]
    try:
        claim = await claim_delivery(channel, delivery_id, sender_id, wait)
    except Exception as error:
        logger.error("%s: delivery %s not taken in, the database cannot be reached (%s); answered 503",
                     channel, delivery_id, describe(error))
        return "unavailable", 503
    if claim.state == DUPLICATE:
        return "duplicate", 200
    if claim.state == BUSY:
        return busy
    if claim.state == RETAKEN:
        logger.warning("%s: delivery %s was left unfinished past its lease (a replica died); processing it again",
                       channel, delivery_id)
    task = asyncio.ensure_future(_handle_claimed(channel, delivery_id, work))
    _running.add(task)
    task.add_done_callback(_running.discard)
    return await asyncio.shield(task)


def lease_wait() -> float:
    """Seconds a redelivery waits for a busy claim to be done or abandoned: a claim still
    renewed after it belongs to a live replica."""
    return LEASE_SECONDS + _POLL


def retry_after() -> str:
    """The Retry-After header of a 503: one lease, by when a busy or failed claim is free."""
    return str(math.ceil(LEASE_SECONDS))


def _last_inbound(channel: str, sender_id: str) -> Optional[dt.datetime]:
    with session() as db:
        return db.execute(sa.select(sa.func.max(ChannelDelivery.received_at)).where(
            ChannelDelivery.channel == channel, ChannelDelivery.sender_id == sender_id)).scalar()


async def last_inbound(channel: str, sender_id: str) -> Optional[dt.datetime]:
    """When `sender_id` last wrote on `channel` (None if never)."""
    moment = await asyncio.to_thread(_last_inbound, channel, sender_id)
    if moment is not None and moment.tzinfo is None:  # max() bypasses the column type on SQLite
        moment = dt.datetime.fromisoformat(str(moment)).replace(tzinfo=dt.timezone.utc)
    return moment


# ---- outbound -----------------------------------------------------------------------------

@dataclass
class Outcome:
    """What became of a send: its result, or the error that ended it, and the attempts made."""

    result: Any = None
    error: Optional[BaseException] = None
    attempts: int = 0

    @property
    def ok(self) -> bool:
        """Whether the provider accepted the message."""
        return self.error is None


# classify(error) -> (transient, seconds the provider asked to wait or None)
Classifier = Callable[[BaseException], Tuple[bool, Optional[float]]]


async def send_with_retry(send: Callable[[], Awaitable[Any]], classify: Classifier, what: str,
                          attempts: Optional[int] = None) -> Outcome:
    """Runs `send` until it succeeds, fails for good, or `attempts` are spent; never raises."""
    attempts = attempts or ATTEMPTS
    outcome = Outcome()
    for attempt in range(1, attempts + 1):
        outcome.attempts = attempt
        try:
            outcome.result, outcome.error = await send(), None
            return outcome
        except asyncio.CancelledError:
            raise
        except Exception as error:  # every failure is classified, logged and returned
            outcome.error = error
            transient, wait = classify(error)
            if not transient or attempt == attempts:
                break
            delay = wait if wait is not None else BASE_DELAY * 2 ** (attempt - 1) * random.uniform(0.75, 1.25)
            if delay > MAX_DELAY:
                break
            logger.warning("%s failed (attempt %d of %d, retrying in %.1fs): %s",
                           what, attempt, attempts, delay, describe(error))
            await asyncio.sleep(delay)
    logger.error("%s failed after %d attempt(s): %s", what, outcome.attempts, describe(outcome.error))
    return outcome


def _record(channel: str, message_id: Optional[str], recipient_id: str, status: str,
            error_code: Optional[str], error: Optional[str], attempts: int, create: bool) -> None:
    with session() as db, db.begin():
        row = None
        if message_id:
            row = db.execute(sa.select(DeliveryStatus).where(
                DeliveryStatus.channel == channel, DeliveryStatus.message_id == message_id)).scalar()
        if row is None and not create:
            return  # a callback about a message we no longer hold (its user was forgotten)
        if row is None:
            db.add(DeliveryStatus(channel=channel, message_id=message_id, recipient_id=recipient_id,
                                  status=status, error_code=error_code, error=error, attempts=attempts))
        elif STATUS_RANK.get(status, 0) >= STATUS_RANK.get(row.status, 0):
            row.status = status
            row.error_code = error_code or row.error_code
            row.error = error or row.error
    load_key()  # the database answers: the log pseudonyms' key, once


async def record_status(channel: str, message_id: Optional[str], recipient_id: str, status: str,
                        error_code: Any = None, error: Any = None, attempts: int = 1, strict: bool = False) -> None:
    """Records the status of a sent message (a send's outcome or a provider's callback).

    A failure is logged; with `strict` (a provider's callback, which it can send again) it raises.
    A callback only updates a message recorded when it was sent: it never adds one, so a status
    arriving after the user asked to be forgotten does not store their number again."""
    try:
        await asyncio.to_thread(_record, channel, message_id and str(message_id)[:64], recipient_id[:128],
                                status[:16], error_code and str(error_code)[:16],
                                error and str(error)[:200], attempts, not strict)
    except Exception as failure:  # a status we cannot store must not fail the send that produced it
        logger.error("could not record the status %s of a %s message (%s)", status, channel, describe(failure))
        if strict:
            raise


def statuses(channel: Optional[str] = None) -> List[DeliveryStatus]:
    """Recorded delivery statuses, oldest first (for staff and tests)."""
    with session() as db:
        query = sa.select(DeliveryStatus).order_by(DeliveryStatus.id)
        if channel:
            query = query.where(DeliveryStatus.channel == channel)
        return list(db.execute(query).scalars())


# ---- long texts ---------------------------------------------------------------------------

_SEPARATORS = ("\n\n", "\n", r"(?<=[.!?؟۔])\s+", r"\s+")


def utf16_length(text: str) -> int:
    """Length in UTF-16 code units, the way Telegram and WhatsApp count."""
    return len(text.encode("utf-16-le")) // 2


def split_long(text: str, limit: int, length: Callable[[str], int] = utf16_length,
               separators: Tuple[str, ...] = _SEPARATORS) -> List[str]:
    """`text` in parts of at most `limit`, cut at paragraphs, else lines, sentences, words."""
    if length(text) <= limit:
        return [text]
    if not separators:
        parts, current = [], ""
        for ch in text:
            if current and length(current + ch) > limit:
                parts.append(current)
                current = ""
            current += ch
        return parts + ([current] if current else [])
    separator, rest = separators[0], separators[1:]
    pieces = re.split(separator, text) if separator.startswith(("(", "\\")) else text.split(separator)
    joiner = separator if not separator.startswith(("(", "\\")) else " "
    parts: List[str] = []
    current = ""
    for piece in pieces:
        candidate = f"{current}{joiner}{piece}" if current else piece
        if length(candidate) <= limit:
            current = candidate
            continue
        if current:
            parts.append(current)
        if length(piece) <= limit:
            current = piece
        else:
            *whole, current = split_long(piece, limit, length, rest)
            parts.extend(whole)
    if current:
        parts.append(current)
    return [p.strip() for p in parts if p.strip()]


# ---- SMS pages waiting for MORE -----------------------------------------------------------

def _save_pages(sender_id: str, pages: List[str]) -> None:
    with session() as db, db.begin():
        row = db.get(SmsContinuation, sender_id)
        if not pages:
            if row is not None:
                db.delete(row)
            return
        if row is None:
            db.add(SmsContinuation(sender_id=sender_id, pages=json.dumps(pages, ensure_ascii=False)))
        else:
            row.pages, row.created_at = json.dumps(pages, ensure_ascii=False), utcnow()


async def save_pages(sender_id: str, pages: List[str]) -> None:
    """Keeps the pages a user has not read yet (none: forgets them)."""
    await asyncio.to_thread(_save_pages, sender_id, pages)


def _next_page(sender_id: str) -> Optional[str]:
    with session() as db, db.begin():
        row = db.get(SmsContinuation, sender_id)
        if row is None:
            return None
        pages = json.loads(row.pages)
        if len(pages) > 1:
            row.pages = json.dumps(pages[1:], ensure_ascii=False)
        else:
            db.delete(row)
        return pages[0]


async def next_page(sender_id: str) -> Optional[str]:
    """Takes the next unread page of `sender_id`, if one is waiting."""
    return await asyncio.to_thread(_next_page, sender_id)


# ---- replies a channel sends itself -------------------------------------------------------

async def tracker_of(agent: Any, sender_id: str) -> Any:
    """The conversation of `sender_id`, or None (no agent, no conversation, a store error)."""
    if agent is None or getattr(agent, "tracker_store", None) is None:
        return None
    try:
        return await agent.tracker_store.retrieve(sender_id)
    except Exception as error:
        logger.error("could not read the conversation of a sender", exc_info=private_exc_info(error))
        return None


def _profile_fields(sender_id: str) -> Tuple[Optional[str], Optional[str]]:
    from bot import profiles

    try:
        profile = profiles.get(sender_id)
    except Exception as error:  # a missing table or a database hiccup: fall back to hints and defaults
        logger.error("could not read a profile (%s)", describe(error))
        return None, None
    return (profile.language, profile.country) if profile else (None, None)


async def renderer_for_user(sender_id: str, tracker: Any = None, hint: Optional[str] = None):
    """A renderer in the user's language: the conversation's, else their profile's, else the
    channel's hint, else their programme's default (the country from the phone number)."""
    from bot import programme as programmes
    from bot.i18n import Renderer, available_languages
    from bot.phone import country_of

    language = tracker.get_slot("language") if tracker is not None else None
    country = tracker.get_slot("country") if tracker is not None else None
    if not language or not country:
        saved_language, saved_country = await asyncio.to_thread(_profile_fields, sender_id)
        language, country = language or saved_language, country or saved_country
    hint = (hint or "").replace("_", "-").split("-")[0].lower()
    language = language or (hint if hint in available_languages() else None)
    programme = programmes.for_country(country or country_of(sender_id)) or programmes.default()
    language = language if language in available_languages() else programme.default_language
    return Renderer(language, programme.country, programme.currency, programme.timezone)


def is_paused(tracker: Any) -> bool:
    """Whether an advisor holds the conversation (Rasa's paused state)."""
    try:
        return bool(tracker is not None and tracker.is_paused())
    except Exception:
        return False

"""What the Telegram and Twilio channels do the same way around a delivery.

Inbound: a delivery (Telegram `update_id`, Twilio `MessageSid`) is claimed once, so a replayed
webhook is answered without being processed again. Outbound: a send is retried with backoff on
transient errors, its outcome is recorded as a delivery status and logged, and it never raises
into the server. Also here: the pages of a long SMS waiting for MORE, long texts split at
paragraphs, and the renderer for a reply the channel sends itself (media, STOP, HELP).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import random
import re
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, List, Optional, Tuple

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from bot.channel_store import ChannelDelivery, DeliveryStatus, SmsContinuation
from bot.storage import session, utcnow

logger = logging.getLogger(__name__)

ATTEMPTS = 3
BASE_DELAY = 0.5  # seconds before the first retry; doubled each time, with jitter
MAX_DELAY = 10.0  # a provider asking to wait longer than this is not waited for

# Rank of each status: a late callback never moves a message back (delivered, then "sent").
STATUS_RANK = {"accepted": 1, "scheduled": 1, "queued": 1, "sending": 2, "sent": 3,
               "delivered": 4, "undelivered": 4, "failed": 4, "canceled": 4, "read": 5}


# ---- inbound ------------------------------------------------------------------------------

def _claim(channel: str, delivery_id: str, sender_id: str) -> bool:
    try:
        with session() as db, db.begin():
            db.add(ChannelDelivery(channel=channel, delivery_id=delivery_id, sender_id=sender_id))
        return True
    except IntegrityError:
        return False


async def first_delivery(channel: str, delivery_id: str, sender_id: str) -> bool:
    """Claims a delivery: True the first time it is seen, False for a duplicate."""
    return await asyncio.to_thread(_claim, channel, str(delivery_id)[:64], sender_id)


def _release(channel: str, delivery_id: str) -> None:
    with session() as db, db.begin():
        db.execute(sa.delete(ChannelDelivery).where(ChannelDelivery.channel == channel,
                                                    ChannelDelivery.delivery_id == delivery_id))


async def release_delivery(channel: str, delivery_id: str) -> None:
    """Forgets a claimed delivery that could not be processed, so the provider's retry is."""
    await asyncio.to_thread(_release, channel, str(delivery_id)[:64])


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
                           what, attempt, attempts, delay, error)
            await asyncio.sleep(delay)
    logger.error("%s failed after %d attempt(s): %s", what, outcome.attempts, outcome.error)
    return outcome


def _record(channel: str, message_id: Optional[str], recipient_id: str, status: str,
            error_code: Optional[str], error: Optional[str], attempts: int) -> None:
    with session() as db, db.begin():
        row = None
        if message_id:
            row = db.execute(sa.select(DeliveryStatus).where(
                DeliveryStatus.channel == channel, DeliveryStatus.message_id == message_id)).scalar()
        if row is None:
            db.add(DeliveryStatus(channel=channel, message_id=message_id, recipient_id=recipient_id,
                                  status=status, error_code=error_code, error=error, attempts=attempts))
        elif STATUS_RANK.get(status, 0) >= STATUS_RANK.get(row.status, 0):
            row.status = status
            row.error_code = error_code or row.error_code
            row.error = error or row.error


async def record_status(channel: str, message_id: Optional[str], recipient_id: str, status: str,
                        error_code: Any = None, error: Any = None, attempts: int = 1) -> None:
    """Records the status of a sent message (a send's outcome or a provider's callback)."""
    try:
        await asyncio.to_thread(_record, channel, message_id and str(message_id)[:64], recipient_id[:128],
                                status[:16], error_code and str(error_code)[:16],
                                error and str(error)[:200], attempts)
    except Exception:  # a status we cannot store must not fail the send that produced it
        logger.exception("could not record status %s of %s message %s", status, channel, message_id)


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
    except Exception:
        logger.exception("could not read the conversation of a sender")
        return None


def _profile_fields(sender_id: str) -> Tuple[Optional[str], Optional[str]]:
    from bot import profiles

    try:
        profile = profiles.get(sender_id)
    except Exception:  # a missing table or a database hiccup: fall back to hints and defaults
        logger.exception("could not read a profile")
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

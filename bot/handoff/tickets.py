"""Handoff tickets: open, claimed, released, closed; who, when, why, on which channel.

Every change of state is one conditional UPDATE, so two advisors (or two server replicas)
racing for the same ticket cannot both win: the database decides.
"""
from __future__ import annotations

import datetime as dt
from typing import List, Optional

import sqlalchemy as sa

from bot.storage import Base, UTCDateTime, session, utcnow

OPEN, CLAIMED, RELEASED, CLOSED = "open", "claimed", "released", "closed"
ACTIVE = (OPEN, CLAIMED)
REASONS = ("user_request", "repeated_fallback", "sensitive")


class Ticket(Base):
    """One handoff of one conversation to an advisor."""

    __tablename__ = "tickets"
    id = sa.Column(sa.Integer, primary_key=True)
    sender_id = sa.Column(sa.String(128), nullable=False, index=True)
    programme = sa.Column(sa.String(64))
    reason = sa.Column(sa.String(32), nullable=False)
    channel = sa.Column(sa.String(32), nullable=False)
    language = sa.Column(sa.String(8), nullable=False)
    country = sa.Column(sa.String(2))
    status = sa.Column(sa.String(16), nullable=False, default=OPEN, index=True)
    advisor_id = sa.Column(sa.Integer)
    advisor = sa.Column(sa.String(100))
    resolution = sa.Column(sa.String(32))
    created_at = sa.Column(UTCDateTime, nullable=False, default=utcnow, index=True)
    announced_at = sa.Column(UTCDateTime)
    claimed_at = sa.Column(UTCDateTime)
    first_reply_at = sa.Column(UTCDateTime)
    last_activity_at = sa.Column(UTCDateTime)
    released_at = sa.Column(UTCDateTime)
    closed_at = sa.Column(UTCDateTime)

    @property
    def active(self) -> bool:
        """Whether an advisor holds, or is about to hold, the conversation."""
        return self.status in ACTIVE


class TicketPost(Base):
    """A message the desk posted about a ticket (a Telegram message, a forum topic), so a reply
    to it, or a message in that topic, finds its ticket."""

    __tablename__ = "ticket_posts"
    chat_id = sa.Column(sa.String(64), primary_key=True)
    message_id = sa.Column(sa.String(64), primary_key=True)
    ticket_id = sa.Column(sa.Integer, nullable=False, index=True)
    thread_id = sa.Column(sa.String(64))
    created_at = sa.Column(UTCDateTime, nullable=False, default=utcnow)


class PostToErase(Base):
    """A desk post about a person who asked to be forgotten: the desk deletes it from the
    advisors' group (or blanks it where Telegram no longer lets a bot delete), then this row."""

    __tablename__ = "desk_posts_to_erase"
    chat_id = sa.Column(sa.String(64), primary_key=True)
    message_id = sa.Column(sa.String(64), primary_key=True)
    thread_id = sa.Column(sa.String(64))
    since = sa.Column(UTCDateTime, nullable=False, default=utcnow)
    attempts = sa.Column(sa.Integer, nullable=False, default=0)


def open_ticket(sender_id: str, reason: str, channel: str, language: str, country: Optional[str],
                programme: Optional[str], now: Optional[dt.datetime] = None) -> Ticket:
    """The sender's active ticket, or a new open one: asking twice does not queue twice."""
    with session() as db, db.begin():
        current = db.execute(sa.select(Ticket).where(Ticket.sender_id == sender_id, Ticket.status.in_(ACTIVE))
                             .order_by(Ticket.id.desc())).scalars().first()
        if current is not None:
            return current
        ticket = Ticket(sender_id=sender_id, reason=reason, channel=channel, language=language, country=country,
                        programme=programme, status=OPEN, created_at=now or utcnow())
        db.add(ticket)
    return ticket


def get(ticket_id: int) -> Optional[Ticket]:
    """The ticket with this number."""
    with session() as db:
        return db.get(Ticket, ticket_id)


def active_for(sender_id: str) -> Optional[Ticket]:
    """The sender's open or claimed ticket, if any."""
    with session() as db:
        return db.execute(sa.select(Ticket).where(Ticket.sender_id == sender_id, Ticket.status.in_(ACTIVE))
                          .order_by(Ticket.id.desc())).scalars().first()


def _update(ticket_id: int, condition, **values) -> bool:
    with session() as db, db.begin():
        done = db.execute(sa.update(Ticket).where(Ticket.id == ticket_id, condition).values(**values)
                          .execution_options(synchronize_session=False))
        return done.rowcount == 1


def claim(ticket_id: int, advisor_id: int, advisor_name: str, now: Optional[dt.datetime] = None) -> bool:
    """Gives an open ticket to this advisor; True if they hold it now (also when they already did)."""
    now = now or utcnow()
    if _update(ticket_id, Ticket.status == OPEN, status=CLAIMED, advisor_id=advisor_id, advisor=advisor_name,
               claimed_at=now, last_activity_at=now):
        return True
    ticket = get(ticket_id)
    return bool(ticket and ticket.status == CLAIMED and ticket.advisor_id == advisor_id)


def record_reply(ticket_id: int, advisor_id: int, now: Optional[dt.datetime] = None) -> None:
    """Notes an advisor's message: the first one sets the response time."""
    now = now or utcnow()
    _update(ticket_id, sa.and_(Ticket.advisor_id == advisor_id, Ticket.first_reply_at.is_(None)), first_reply_at=now)
    _update(ticket_id, Ticket.advisor_id == advisor_id, last_activity_at=now)


def touch(ticket_id: int, now: Optional[dt.datetime] = None) -> None:
    """Notes activity on a ticket (the returnee wrote), which delays an automatic release."""
    _update(ticket_id, Ticket.status.in_(ACTIVE), last_activity_at=now or utcnow())


def release(ticket_id: int, advisor_id: Optional[int], now: Optional[dt.datetime] = None) -> bool:
    """Hands the conversation back to the bot. Only the holder may (None: the system, after silence)."""
    holder = Ticket.status == CLAIMED if advisor_id is None else \
        sa.and_(Ticket.status == CLAIMED, Ticket.advisor_id == advisor_id)
    return _update(ticket_id, holder, status=RELEASED, released_at=now or utcnow())


def close(ticket_id: int, advisor_id: int, resolution: str, now: Optional[dt.datetime] = None) -> bool:
    """Ends a ticket with a resolution tag: by its holder, or by any advisor while nobody holds it."""
    now = now or utcnow()
    allowed = sa.or_(sa.and_(Ticket.status == CLAIMED, Ticket.advisor_id == advisor_id), Ticket.status == OPEN)
    return _update(ticket_id, allowed, status=CLOSED, closed_at=now, resolution=resolution[:32],
                   advisor_id=sa.func.coalesce(Ticket.advisor_id, advisor_id))


def mark_announced(ticket_id: int, before: dt.datetime, now: Optional[dt.datetime] = None) -> bool:
    """Takes the turn to announce a waiting ticket (once per replica and period: the first wins)."""
    due = sa.or_(Ticket.announced_at.is_(None), Ticket.announced_at < before)
    return _update(ticket_id, sa.and_(Ticket.status == OPEN, due), announced_at=now or utcnow())


def to_announce(before: dt.datetime) -> List[Ticket]:
    """Open tickets never announced, or last announced before `before` (still waiting)."""
    with session() as db:
        return list(db.execute(sa.select(Ticket).where(
            Ticket.status == OPEN, sa.or_(Ticket.announced_at.is_(None), Ticket.announced_at < before))
            .order_by(Ticket.id)).scalars())


def idle(before: dt.datetime) -> List[Ticket]:
    """Claimed tickets with no message either way since `before`."""
    with session() as db:
        return list(db.execute(sa.select(Ticket).where(Ticket.status == CLAIMED, Ticket.last_activity_at < before)
                               .order_by(Ticket.id)).scalars())


def queue() -> List[Ticket]:
    """Tickets waiting for an advisor, oldest first."""
    with session() as db:
        return list(db.execute(sa.select(Ticket).where(Ticket.status == OPEN).order_by(Ticket.id)).scalars())


def held_by(advisor_id: int) -> List[Ticket]:
    """The tickets an advisor holds now."""
    with session() as db:
        return list(db.execute(sa.select(Ticket).where(Ticket.status == CLAIMED, Ticket.advisor_id == advisor_id)
                               .order_by(Ticket.id)).scalars())


def remember_post(ticket_id: int, chat_id: str, message_id: str, thread_id: Optional[str] = None) -> None:
    """Remembers a message posted about a ticket."""
    with session() as db, db.begin():
        db.merge(TicketPost(chat_id=str(chat_id), message_id=str(message_id), ticket_id=ticket_id,
                            thread_id=thread_id and str(thread_id), created_at=utcnow()))


def ticket_of_post(chat_id: str, message_id: Optional[str] = None, thread_id: Optional[str] = None) -> Optional[int]:
    """The ticket a message replies to (by message) or is written in (by forum topic)."""
    with session() as db:
        if message_id is not None:
            found = db.execute(sa.select(TicketPost.ticket_id).where(
                TicketPost.chat_id == str(chat_id), TicketPost.message_id == str(message_id))).scalar()
            if found is not None:
                return found
        if thread_id is not None:
            return db.execute(sa.select(TicketPost.ticket_id).where(
                TicketPost.chat_id == str(chat_id), TicketPost.thread_id == str(thread_id))
                .order_by(TicketPost.ticket_id.desc())).scalars().first()
    return None


def thread_of(ticket_id: int, chat_id: str) -> Optional[str]:
    """The forum topic opened for a ticket in a chat, if any."""
    with session() as db:
        return db.execute(sa.select(TicketPost.thread_id).where(
            TicketPost.ticket_id == ticket_id, TicketPost.chat_id == str(chat_id), TicketPost.thread_id.isnot(None))
        ).scalars().first()


def first_post(ticket_id: int, chat_id: str) -> Optional[str]:
    """The first message posted about a ticket in a chat (to reply under it)."""
    with session() as db:
        return db.execute(sa.select(TicketPost.message_id).where(
            TicketPost.ticket_id == ticket_id, TicketPost.chat_id == str(chat_id))
            .order_by(TicketPost.created_at)).scalars().first()


def forget(sender_id: str, db: Optional[sa.engine.Connection] = None) -> int:
    """Unlinks the sender's tickets for "forget me"; returns how many tickets.

    Each ticket stays, as an anonymous count (reason, channel, language, programme, times), with
    an empty sender id; one still waiting or held is closed (`forgotten`), so no advisor writes
    to the person again. The desk's posts about it leave `ticket_posts`, so a reply in the
    advisors' group finds nothing, and wait in `desk_posts_to_erase` until the desk has deleted
    them from Telegram. `db` runs it in the caller's transaction.
    """
    if db is None:
        from bot.storage import engine

        with engine().begin() as connection:
            return forget(sender_id, connection)
    tickets, posts = Ticket.__table__, TicketPost.__table__
    ids = list(db.execute(sa.select(tickets.c.id).where(tickets.c.sender_id == sender_id)).scalars())
    if not ids:
        return 0
    now = utcnow()
    to_erase = [{"chat_id": row.chat_id, "message_id": row.message_id, "thread_id": row.thread_id, "since": now}
                for row in db.execute(sa.select(posts).where(posts.c.ticket_id.in_(ids)))]
    if to_erase:
        db.execute(sa.insert(PostToErase.__table__), to_erase)
    db.execute(sa.delete(posts).where(posts.c.ticket_id.in_(ids)))
    db.execute(sa.update(tickets).where(tickets.c.id.in_(ids), tickets.c.status.in_(ACTIVE))
               .values(status=CLOSED, resolution="forgotten", closed_at=now, last_activity_at=now))
    db.execute(sa.update(tickets).where(tickets.c.id.in_(ids)).values(sender_id=""))
    return len(ids)


MAX_ERASE_ATTEMPTS = 50  # a post Telegram keeps refusing for this many ticks is given up (and logged)


def posts_to_erase(limit: int = 50) -> List[PostToErase]:
    """Desk posts still to delete from Telegram, oldest first."""
    with session() as db:
        return list(db.execute(sa.select(PostToErase).order_by(PostToErase.since, PostToErase.chat_id,
                                                               PostToErase.message_id).limit(limit)).scalars())


def post_erased(chat_id: str, message_id: Optional[str] = None, thread_id: Optional[str] = None) -> None:
    """Forgets a post once it is gone from Telegram; with `thread_id`, every post of that forum topic."""
    t = PostToErase.__table__
    where = t.c.thread_id == str(thread_id) if thread_id is not None else t.c.message_id == str(message_id)
    with session() as db, db.begin():
        db.execute(sa.delete(t).where(t.c.chat_id == str(chat_id), where))


def erase_failed(chat_id: str, message_id: str) -> bool:
    """Counts a failed attempt; True when the post is given up (and its row deleted)."""
    t = PostToErase.__table__
    key = sa.and_(t.c.chat_id == str(chat_id), t.c.message_id == str(message_id))
    with session() as db, db.begin():
        db.execute(sa.update(t).where(key).values(attempts=t.c.attempts + 1))
        attempts = db.execute(sa.select(t.c.attempts).where(key)).scalar()
        if attempts is not None and attempts >= MAX_ERASE_ATTEMPTS:
            db.execute(sa.delete(t).where(key))
            return True
    return False

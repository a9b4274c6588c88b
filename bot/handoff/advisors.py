"""Who may take and answer a handoff: the advisors registered in the `advisors` table.

The dashboard's admin page and `python -m bot.handoff advisors ...` manage the same rows. An
advisor is reached on `telegram` (contact: their numeric Telegram user id) or on `sms` /
`whatsapp` (contact: their number in international format).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Optional, Tuple

import phonenumbers
import sqlalchemy as sa

from bot.dashboard.models import advisors as table
from bot.storage import engine, utcnow
from bot.text import fold_digits

CHANNELS = ("telegram", "sms", "whatsapp")
_TELEGRAM_ID = re.compile(r"^-?[0-9]{1,19}$")
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


class AdvisorError(ValueError):
    """An advisor that cannot be registered as given."""


@dataclass(frozen=True)
class Advisor:
    """A registered advisor."""

    id: int
    name: str
    channel: str
    contact: str
    programme: Optional[str]
    languages: Tuple[str, ...]
    active: bool = True

    @property
    def first_name(self) -> str:
        """The name the returnee sees beside the advisor's messages."""
        return self.name.split()[0] if self.name.split() else self.name


def normal_contact(channel: str, contact: str) -> str:
    """The contact as stored and as the channels report it: a digit string for Telegram,
    E.164 for SMS (`+21671000100`), `whatsapp:+...` for WhatsApp. Arabic-Indic and Persian
    digits, direction marks pasted from right-to-left text and a `00` international prefix are
    accepted."""
    contact = _INVISIBLE.sub("", fold_digits(contact or "")).strip()
    if channel == "telegram":
        if not _TELEGRAM_ID.match(contact):
            raise AdvisorError("a Telegram advisor is registered by their numeric user id")
        return str(int(contact))
    if channel not in CHANNELS:
        raise AdvisorError(f"channel must be one of {', '.join(CHANNELS)}")
    number = contact.split(":", 1)[-1].strip()
    if number.startswith("00"):
        number = "+" + number[2:]
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException as error:
        raise AdvisorError(f"not a phone number in international format: {contact}") from error
    if not phonenumbers.is_possible_number(parsed):
        raise AdvisorError(f"not a possible phone number: {contact}")
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return f"whatsapp:{e164}" if channel == "whatsapp" else e164


def _advisor(row) -> Advisor:
    return Advisor(row.id, row.name, row.channel, row.contact, row.programme,
                   tuple((row.languages or "").split()), bool(row.active))


def find(channel: str, contact: str) -> Optional[Advisor]:
    """The active advisor writing from this contact on this channel, or None (an outsider)."""
    try:
        contact = normal_contact(channel, contact)
    except AdvisorError:
        return None
    with engine().connect() as db:
        row = db.execute(sa.select(table).where(table.c.channel == channel, table.c.contact == contact,
                                                table.c.active.is_(True)).order_by(table.c.id)).first()
    return _advisor(row) if row else None


def get(advisor_id: int) -> Optional[Advisor]:
    """The advisor with this id (active or not)."""
    with engine().connect() as db:
        row = db.execute(sa.select(table).where(table.c.id == advisor_id)).first()
    return _advisor(row) if row else None


def reachable_by_sms(programme: Optional[str]) -> List[Advisor]:
    """Active SMS and WhatsApp advisors of a programme (or of every programme)."""
    with engine().connect() as db:
        rows = db.execute(sa.select(table).where(
            table.c.channel.in_(("sms", "whatsapp")), table.c.active.is_(True),
            sa.or_(table.c.programme.is_(None), table.c.programme == programme)).order_by(table.c.id)).all()
    return [_advisor(row) for row in rows]


def add(name: str, channel: str, contact: str, programme: Optional[str] = None,
        languages: Tuple[str, ...] = ()) -> Advisor:
    """Registers an advisor (or reactivates the one with this contact)."""
    name = (name or "").strip()
    if not 1 <= len(name) <= 100:
        raise AdvisorError("a name of 1 to 100 characters is needed")
    contact = normal_contact(channel, contact)
    now = utcnow()
    with engine().begin() as db:
        row = db.execute(sa.select(table.c.id).where(table.c.channel == channel, table.c.contact == contact)).first()
        values = dict(name=name, programme=programme, languages=" ".join(languages), active=True, updated_at=now)
        if row:
            db.execute(sa.update(table).where(table.c.id == row.id).values(**values))
            advisor_id = row.id
        else:
            advisor_id = db.execute(sa.insert(table).values(channel=channel, contact=contact, created_at=now,
                                                            **values)).inserted_primary_key[0]
    return get(advisor_id)


def deactivate(advisor_id: int) -> bool:
    """Stops an advisor from taking or answering tickets; True if they were active."""
    with engine().begin() as db:
        return db.execute(sa.update(table).where(table.c.id == advisor_id, table.c.active.is_(True))
                          .values(active=False, updated_at=utcnow())).rowcount == 1


def all_advisors() -> List[Advisor]:
    """Every registered advisor, active first."""
    with engine().connect() as db:
        rows = db.execute(sa.select(table).order_by(table.c.active.desc(), table.c.name)).all()
    return [_advisor(row) for row in rows]

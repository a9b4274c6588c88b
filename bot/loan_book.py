"""Users' actual loans: the instalments programme staff import, so reminders follow real due dates.

Staff import a CSV file with `python -m bot.reminders import-loan --file loans.csv`. When a user
with an imported loan asks for reminders, they are scheduled from these due dates and amounts
instead of a calculated schedule.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

import phonenumbers
import sqlalchemy as sa
from babel.numbers import get_currency_precision

from bot import programme as programmes
from bot.storage import Base, DecimalString, UTCDateTime, session, utcnow

CSV_HELP = """One row per instalment, UTF-8, comma- or semicolon-separated, with a header row:

    contact,programme,due_date,amount,currency
    +216 20 123 456,sample-tn,2026-01-15,350.000,TND
    5551234001,sample-tn,2026-01-15,350.000,TND

contact    the user's phone number in international form (+216..., 00216...) for SMS and
           WhatsApp, or their Telegram id (digits only)
programme  a programme id (programmes/*.yml)
due_date   YYYY-MM-DD
amount     the instalment, a plain number (350.000, no thousands separator)
currency   optional; when given, the programme's currency

Importing replaces every instalment of each (contact, programme) the file names, so importing
the same file again changes nothing. A file with any bad row imports nothing (exit status 2).
"""
REQUIRED_COLUMNS = ("contact", "programme", "due_date", "amount")
PHONE_CHANNELS = ("sms", "whatsapp")
MAX_ROWS = 100_000


class LoanInstalment(Base):
    """One instalment of a user's actual loan."""

    __tablename__ = "loan_instalments"
    __table_args__ = (sa.UniqueConstraint("contact", "programme", "due_date", name="uq_loan_instalments_due"),)
    id = sa.Column(sa.Integer, primary_key=True)
    contact = sa.Column(sa.String(128), nullable=False, index=True)
    programme = sa.Column(sa.String(64), nullable=False)
    due_date = sa.Column(sa.Date, nullable=False)
    amount = sa.Column(DecimalString, nullable=False)
    currency = sa.Column(sa.String(3), nullable=False)
    imported_at = sa.Column(UTCDateTime, nullable=False, default=utcnow)


class LoanFileError(Exception):
    """A loans file that cannot be imported; `problems` are one sentence each (with the row)."""

    def __init__(self, problems: List[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class ImportSummary:
    """What an import stored."""

    loans: int
    instalments: int
    replaced: Dict[str, Set[Tuple[str, dt.date]]] = field(default_factory=dict)
    """Per contact, the (programme, due date) of the instalments the import replaced."""


def contact_of(value: str) -> Optional[str]:
    """A contact as the file writes it, in one spelling: "+21620123456" for a phone number in
    international form (spaces, dots, dashes, "00" allowed), the digits of a Telegram id, or None."""
    raw = (value or "").strip()
    compact = "".join(ch for ch in raw if ch not in " -.()/\u00a0")
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    if compact.startswith("+"):
        try:
            number = phonenumbers.parse(compact, None)
        except phonenumbers.NumberParseException:
            return None
        if not phonenumbers.is_valid_number(number):
            return None
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return raw if raw.isdigit() and len(raw) <= 20 else None


def contact_of_conversation(sender_id: str, channel: Optional[str] = None) -> Optional[str]:
    """The contact of a conversation, only on a channel that proves it: the phone number on SMS and
    WhatsApp (`whatsapp:+216...`), the Telegram id on Telegram. The web chat, whose sender id the
    browser chooses, proves neither, so it never sees an imported loan. Without a channel (staff
    tools, forgetting a user) the sender id's form decides."""
    if channel is None:
        return contact_of((sender_id or "").split(":", 1)[-1])
    if channel in PHONE_CHANNELS:
        address = (sender_id or "").split(":", 1)[-1]
        return contact_of(address) if address.startswith("+") else None
    if channel == "telegram":
        return sender_id if (sender_id or "").isdigit() else None
    return None


def instalments_for(sender_id: str, channel: Optional[str] = None) -> List[LoanInstalment]:
    """The imported instalments of the user behind a conversation, earliest first; what the user
    is told must pass the conversation's `channel` (see `contact_of_conversation`)."""
    contact = contact_of_conversation(sender_id, channel)
    if contact is None:
        return []
    with session() as db:
        return list(db.execute(sa.select(LoanInstalment).where(LoanInstalment.contact == contact)
                               .order_by(LoanInstalment.due_date, LoanInstalment.programme)).scalars())


def _rows(path: Path) -> Tuple[List[str], List[Tuple[int, Dict[str, str]]]]:
    """The header and the (line number, row) pairs of a CSV file; raises LoanFileError."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise LoanFileError([f"{path}: no such file"])
    except (OSError, UnicodeDecodeError) as error:
        raise LoanFileError([f"{path}: cannot be read as UTF-8 text ({error.__class__.__name__})"])
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        header = [name.strip().lower() for name in next(reader)]
    except StopIteration:
        raise LoanFileError([f"{path}: the file is empty"])
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise LoanFileError([f"{path}: missing column(s) {', '.join(missing)} "
                             f"(the header must name {', '.join(REQUIRED_COLUMNS)}[, currency])"])
    rows = []
    try:
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            if len(rows) >= MAX_ROWS:
                raise LoanFileError([f"{path}: more than {MAX_ROWS} rows; split the file"])
            rows.append((reader.line_num, {name: (values[i].strip() if i < len(values) else "")
                                           for i, name in enumerate(header)}))
    except csv.Error as error:
        raise LoanFileError([f"row {reader.line_num}: not valid CSV ({error})"])
    if not rows:
        raise LoanFileError([f"{path}: no instalments after the header"])
    return header, rows


def _instalment(row: Dict[str, str]) -> Tuple[Optional[dict], List[str]]:
    """One row checked: the instalment's fields, or the problems with it."""
    problems = []
    contact = contact_of(row["contact"]) if row["contact"] else None
    if contact is None:
        problems.append(f"contact {row['contact']!r} is neither a phone number in international form "
                        f"(+216...) nor a Telegram id (digits)")
    programme = programmes.load_all().get(row["programme"])
    if programme is None:
        known = ", ".join(sorted(programmes.load_all()))
        problems.append(f"programme {row['programme']!r} is unknown (known: {known})")
    try:
        due = dt.date.fromisoformat(row["due_date"])
    except ValueError:
        due = None
        problems.append(f"due_date {row['due_date']!r} is not a date written YYYY-MM-DD")
    try:
        amount = Decimal(row["amount"])
        if not amount.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        amount = None
        problems.append(f"amount {row['amount']!r} is not a plain number such as 350.000")
    currency = (row.get("currency") or "").upper() or (programme.currency if programme else "")
    if programme is not None and currency != programme.currency:
        problems.append(f"currency {currency!r} is not the currency of {programme.id} ({programme.currency})")
    if amount is not None:
        if amount <= 0:
            problems.append(f"amount {row['amount']!r} must be more than zero")
        elif programme is not None and -amount.as_tuple().exponent > get_currency_precision(currency):
            problems.append(f"amount {row['amount']!r} has more decimals than {currency} has "
                            f"({get_currency_precision(currency)})")
    if problems:
        return None, problems
    return dict(contact=contact, programme=programme.id, due_date=due, amount=amount, currency=currency), []


def import_file(path: str) -> ImportSummary:
    """Checks every row of a loans CSV, then replaces the instalments of each (contact, programme)
    it names, in one transaction. Raises LoanFileError, storing nothing, if any row is bad."""
    _, rows = _rows(Path(path))
    problems, loans = [], {}
    seen: Dict[Tuple[str, str, dt.date], int] = {}
    for line, row in rows:
        instalment, row_problems = _instalment(row)
        problems += [f"row {line}: {problem}" for problem in row_problems]
        if instalment is None:
            continue
        key = (instalment["contact"], instalment["programme"], instalment["due_date"])
        if key in seen:
            problems.append(f"row {line}: the same contact, programme and due_date as row {seen[key]}")
            continue
        seen[key] = line
        loans.setdefault(key[:2], []).append(instalment)
    if problems:
        raise LoanFileError(problems)
    now = utcnow()
    replaced: Dict[str, Set[Tuple[str, dt.date]]] = {}
    with session() as db, db.begin():
        for (contact, programme_id), instalments in loans.items():
            old = db.execute(sa.select(LoanInstalment.due_date).where(
                LoanInstalment.contact == contact, LoanInstalment.programme == programme_id)).scalars()
            replaced.setdefault(contact, set()).update((programme_id, due) for due in old)
            db.execute(sa.delete(LoanInstalment).where(LoanInstalment.contact == contact,
                                                       LoanInstalment.programme == programme_id))
            db.add_all(LoanInstalment(imported_at=now, **fields) for fields in instalments)
    return ImportSummary(loans=len(loans), instalments=sum(len(i) for i in loans.values()), replaced=replaced)

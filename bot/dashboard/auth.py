"""Staff accounts, passwords, sessions and CSRF tokens.

Passwords are hashed with Argon2id (argon2-cffi's current defaults, rehashed on login when
they change). A session is a random token in an HttpOnly cookie; the database keeps only its
SHA-256, with an absolute expiry (`DASHBOARD_SESSION_HOURS`, default 8) and an idle timeout
(`DASHBOARD_IDLE_MINUTES`, default 30). Each session has its own CSRF token, checked on every
form. Disabling an account or changing its password ends its sessions. Ten failed logins in a
row lock an account for fifteen minutes.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from typing import List, Optional

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy.engine import Engine

from bot.dashboard.models import ROLES, staff_accounts, staff_sessions
from bot.storage import utcnow

MIN_PASSWORD = 10
MAX_FAILURES = 10
LOCK_MINUTES = 15
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.@-]{2,63}$")
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class AccountError(ValueError):
    """An account request that cannot be done; `code` names the problem for the accounts page."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Session:
    """A logged-in staff member."""

    account_id: int
    username: str
    role: str
    csrf_token: str
    token_hash: str

    @property
    def is_admin(self) -> bool:
        """Whether the account has the admin role."""
        return self.role == "admin"


def session_hours() -> float:
    """How long a session lasts at most."""
    return float(os.environ.get("DASHBOARD_SESSION_HOURS", 8))


def idle_minutes() -> float:
    """How long a session survives without a request."""
    return float(os.environ.get("DASHBOARD_IDLE_MINUTES", 30))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_password(password: str) -> None:
    """Raises AccountError when a new password is too weak."""
    if len(password) < MIN_PASSWORD:
        raise AccountError("short_password", f"the password must have at least {MIN_PASSWORD} characters")
    if password.strip() != password or len(set(password)) < 4:
        raise AccountError("simple_password", "the password is too simple")


def create_account(engine: Engine, username: str, password: str, role: str = "staff") -> int:
    """Creates an active account; returns its id."""
    username = username.strip().lower()
    if not _USERNAME.match(username):
        raise AccountError("bad_username", "a username has 3 to 64 characters: lower-case letters, digits, "
                                           "and . _ @ -")
    if role not in ROLES:
        raise AccountError("bad_role", f"the role must be one of {', '.join(ROLES)}")
    check_password(password)
    now = utcnow()
    try:
        with engine.begin() as db:
            return db.execute(sa.insert(staff_accounts).values(
                username=username, password_hash=_hasher.hash(password), role=role, active=True, failed_logins=0,
                created_at=now, updated_at=now)).inserted_primary_key[0]
    except sa.exc.IntegrityError:
        raise AccountError("exists", f"the account {username!r} already exists") from None


def _update(engine: Engine, username: str, **values) -> None:
    with engine.begin() as db:
        account_id = db.execute(sa.select(staff_accounts.c.id)
                                .where(staff_accounts.c.username == username.strip().lower())).scalar()
        if account_id is None:
            raise AccountError("unknown_account", f"no account {username!r}")
        db.execute(sa.update(staff_accounts).where(staff_accounts.c.id == account_id)
                   .values(updated_at=utcnow(), **values))
        if values.get("active") is False or "password_hash" in values or "role" in values:
            db.execute(sa.delete(staff_sessions).where(staff_sessions.c.account_id == account_id))


def set_active(engine: Engine, username: str, active: bool) -> None:
    """Enables or disables an account; disabling ends its sessions at once."""
    _update(engine, username, active=active, failed_logins=0, locked_until=None)


def set_password(engine: Engine, username: str, password: str) -> None:
    """Replaces an account's password and ends its sessions."""
    check_password(password)
    _update(engine, username, password_hash=_hasher.hash(password), failed_logins=0, locked_until=None)


def set_role(engine: Engine, username: str, role: str) -> None:
    """Changes an account's role (its sessions end)."""
    if role not in ROLES:
        raise AccountError("bad_role", f"the role must be one of {', '.join(ROLES)}")
    _update(engine, username, role=role)


def accounts(engine: Engine) -> List[sa.engine.Row]:
    """Every account, by name (without password hashes)."""
    a = staff_accounts.c
    with engine.connect() as db:
        return db.execute(sa.select(a.id, a.username, a.role, a.active, a.created_at, a.last_login_at,
                                    a.locked_until).order_by(a.username)).all()


def authenticate(engine: Engine, username: str, password: str) -> Optional[int]:
    """The account id if the name and password match an active, unlocked account."""
    now, username = utcnow(), username.strip().lower()
    row = None
    if _USERNAME.match(username):  # no account has another name (nor can the database look up a NUL)
        with engine.connect() as db:
            row = db.execute(sa.select(staff_accounts).where(staff_accounts.c.username == username)).first()
    if row is None or not row.active:
        _verify(_DUMMY_HASH, password)
        return None
    if row.locked_until is not None and row.locked_until > now:
        _verify(_DUMMY_HASH, password)
        return None
    ok = _verify(row.password_hash, password)
    with engine.begin() as db:
        if not ok:
            failures = row.failed_logins + 1
            locked = now + dt.timedelta(minutes=LOCK_MINUTES) if failures >= MAX_FAILURES else None
            db.execute(sa.update(staff_accounts).where(staff_accounts.c.id == row.id)
                       .values(failed_logins=0 if locked else failures, locked_until=locked))
            return None
        values = {"failed_logins": 0, "locked_until": None, "last_login_at": now}
        if _hasher.check_needs_rehash(row.password_hash):
            values["password_hash"] = _hasher.hash(password)
        db.execute(sa.update(staff_accounts).where(staff_accounts.c.id == row.id).values(**values))
    return row.id


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def start_session(engine: Engine, account_id: int) -> str:
    """Opens a session for an account; returns the token to put in the cookie."""
    token, now = secrets.token_urlsafe(32), utcnow()
    with engine.begin() as db:
        db.execute(sa.delete(staff_sessions).where(staff_sessions.c.expires_at < now))
        db.execute(sa.insert(staff_sessions).values(
            token_hash=_token_hash(token), account_id=account_id, csrf_token=secrets.token_urlsafe(32),
            created_at=now, last_seen_at=now, expires_at=now + dt.timedelta(hours=session_hours())))
    return token


def session_for(engine: Engine, token: Optional[str]) -> Optional[Session]:
    """The live session of a cookie token, or None (unknown, expired, idle too long, account disabled)."""
    if not token or len(token) > 100:
        return None
    now, token_hash = utcnow(), _token_hash(token)
    s, a = staff_sessions.c, staff_accounts.c
    with engine.connect() as db:
        row = db.execute(sa.select(s.account_id, s.csrf_token, s.last_seen_at, s.expires_at, a.username, a.role, a.active)
                         .join(staff_accounts, a.id == s.account_id).where(s.token_hash == token_hash)).first()
    if row is None:
        return None
    idle = dt.timedelta(minutes=idle_minutes())
    if not row.active or row.expires_at <= now or row.last_seen_at + idle <= now:
        end_session(engine, token)
        return None
    if now - row.last_seen_at > dt.timedelta(seconds=60):
        with engine.begin() as db:
            db.execute(sa.update(staff_sessions).where(s.token_hash == token_hash).values(last_seen_at=now))
    return Session(row.account_id, row.username, row.role, row.csrf_token, token_hash)


def end_session(engine: Engine, token: Optional[str]) -> None:
    """Logs a session out."""
    if token:
        with engine.begin() as db:
            db.execute(sa.delete(staff_sessions).where(staff_sessions.c.token_hash == _token_hash(token)))


def csrf_ok(expected: Optional[str], given: Optional[str]) -> bool:
    """Whether a submitted CSRF token matches the expected one (constant time)."""
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected).encode("utf-8"),
                                                                  str(given).encode("utf-8"))


def new_login_token() -> str:
    """A CSRF token for the login form, sent both as a cookie and as a hidden field."""
    return secrets.token_urlsafe(24)

"""What the channels may write in a log: no phone number, no Telegram id, no message text.

A user is named by `who(sender_id)`: `user-` and 10 characters of the keyed hash the staff
dashboard shows (`bot.dashboard.privacy`), so a log line and a dashboard row can be matched
without either holding the id. Until the key has been read from the database (a first claim or
status does it, off the event loop), a process-local key is used and the name starts `tmp-`.
An error is logged by `describe(error)`: its class and, when a driver or a provider's client
wrote it, its first line with long numbers masked; never the SQL, its parameters or the
driver's DETAIL line (which quotes the row), nor the message of an error our own code raised.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import time
from types import TracebackType
from typing import Optional, Tuple, Type

logger = logging.getLogger(__name__)

_LIBRARIES = {"sqlalchemy", "psycopg2", "sqlite3", "telegram", "twilio", "aiohttp", "httpx", "httpcore", "redis"}
_NUMBER = re.compile(r"\+?\d{6,}")  # phone numbers (E.164) and Telegram ids; short numbers are kept
_LOCAL_KEY = secrets.token_bytes(32)
_shared_key: Optional[bytes] = None
_tried_at = -1e9
_TRY_EVERY = 60.0  # seconds between attempts to read the key


def load_key() -> None:
    """Reads the dashboard's pseudonym key once (blocking: call it from a worker thread)."""
    global _shared_key, _tried_at
    if _shared_key is not None or os.environ.get("DASHBOARD_PSEUDONYM_KEY") \
            or time.monotonic() - _tried_at < _TRY_EVERY:
        return
    _tried_at = time.monotonic()
    try:
        from bot import storage
        from bot.dashboard import privacy

        _shared_key = privacy.key(storage.engine())
    except Exception as error:  # no table or no database yet: the process-local key serves
        logger.debug("pseudonym key not loaded (%s)", describe(error))


def who(sender_id: Optional[str]) -> str:
    """How a log names the user `sender_id`."""
    if not sender_id:
        return "nobody"
    configured = os.environ.get("DASHBOARD_PSEUDONYM_KEY")
    key = configured.encode("utf-8") if configured else _shared_key
    prefix = "user-" if key else "tmp-"
    digest = hmac.new(key or _LOCAL_KEY, str(sender_id).encode("utf-8"), hashlib.sha256).hexdigest()
    return prefix + digest[:10]


def scrub(text: object) -> str:
    """`text` with every number of six digits or more masked."""
    return _NUMBER.sub("#", str(text))


def _worded_by_a_library(error: BaseException) -> bool:
    """Whether the message of `error` was written by a driver or a provider's client (which
    quote no message text), rather than by code that may have put user text in it."""
    source = type(error).__module__.split(".")[0]
    return source in _LIBRARIES or isinstance(error, (OSError, TimeoutError))


def describe(error: BaseException) -> str:
    """One line about `error` fit for a log: its class and, when a library wrote it, the first
    line of its message (for SQLAlchemy errors, the driver's), long numbers masked."""
    inner = getattr(error, "orig", None) or error
    if not _worded_by_a_library(inner):
        return type(inner).__name__
    lines = str(inner).strip().splitlines()
    first = lines[0] if lines else ""
    first = first.split("[SQL:")[0].split("[parameters:")[0].strip()
    return f"{type(inner).__name__}: {scrub(first)[:200]}".rstrip(": ")


class LoggedError(Exception):
    """Stands for an exception in a log record: its traceback, but only its `describe` line."""


def private_exc_info(error: BaseException) -> Tuple[Type[BaseException], BaseException, Optional[TracebackType]]:
    """`exc_info` for `logger.error(..., exc_info=...)` that shows where `error` happened and
    `describe(error)`, not its message (which may quote SQL parameters, a row or a phone number)."""
    return LoggedError, LoggedError(describe(error)), error.__traceback__

"""Reading and writing users' profiles (language, country, channel, opt-out)."""
from __future__ import annotations

from typing import Optional

from bot.storage import Profile, session


def remember(sender_id: str, channel: Optional[str] = None, **fields: object) -> None:
    """Creates or updates the profile of `sender_id` with the given fields."""
    with session() as db, db.begin():
        profile = db.get(Profile, sender_id)
        if profile is None:
            profile = Profile(sender_id=sender_id, channel=channel or "unknown")
            db.add(profile)
        elif channel and channel != profile.channel:
            profile.channel = channel
        for name, value in fields.items():
            setattr(profile, name, value)


def get(sender_id: str) -> Optional[Profile]:
    """The profile of `sender_id`, if the assistant has one."""
    with session() as db:
        return db.get(Profile, sender_id)


def opt_out(sender_id: str, channel: Optional[str] = None) -> None:
    """The user stopped messages (SMS STOP, a blocked Telegram bot): no more reminders."""
    from bot import reminders

    remember(sender_id, channel, opted_out=True)
    reminders.cancel_all(sender_id)


def opt_in(sender_id: str, channel: Optional[str] = None) -> None:
    """The user wants messages again (SMS START)."""
    remember(sender_id, channel, opted_out=False)

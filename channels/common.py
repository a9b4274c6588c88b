"""What every channel does the same way once it has parsed a request."""
from __future__ import annotations

import logging
import unicodedata
from typing import Any, Awaitable, Callable, Optional

from sanic.request import Request

from bot.menus import payload_for_reply
from bot.storage import utcnow
from channels.logs import private_exc_info

logger = logging.getLogger(__name__)

MAX_TEXT_LENGTH = 4096


def agent_of(request: Request) -> Optional[Any]:
    """The Rasa agent serving this request, if the server has one loaded."""
    return getattr(request.app.ctx, "agent", None)


async def resolve_numbered_reply(request: Request, sender_id: str, text: str) -> str:
    """Replaces a numbered answer to the latest menu ("2") by that button's payload."""
    agent = agent_of(request)
    if agent is None or not text or len(text) > 6:
        return text
    try:
        tracker = await agent.tracker_store.retrieve(sender_id)
    except Exception as error:  # a broken store must not stop the message; it is parsed as typed
        logger.error("could not read the conversation to resolve a numbered reply", exc_info=private_exc_info(error))
        return text
    if tracker is None:
        return text
    return payload_for_reply(text, list(tracker.events)) or text


def clean_text(text: Any) -> str:
    """User text as the assistant processes it: a string, control characters and lone surrogates
    removed, bounded; empty when nothing visible is left (only spaces and invisible marks)."""
    if not isinstance(text, str):
        return ""
    text = "".join(ch for ch in text if ch in "\n\t" or ord(ch) >= 32 and not 0x7F <= ord(ch) < 0xA0
                   and not 0xD800 <= ord(ch) < 0xE000)
    text = text[:MAX_TEXT_LENGTH].strip()
    return text if any(not ch.isspace() and unicodedata.category(ch) != "Cf" for ch in text) else ""


OnNewMessage = Callable[[Any], Awaitable[Any]]


def relayed_to_advisor(on_new_message: OnNewMessage) -> OnNewMessage:
    """`on_new_message` that also passes the message to the advisor desk when an advisor holds
    the conversation (the bot itself stays silent: Rasa's paused state)."""
    async def handle(message: Any) -> Any:
        from bot.handoff import desk as desks

        since = utcnow()
        result = await on_new_message(message)
        desk = desks.current()
        if desk is not None and message.sender_id:
            try:
                await desk.returnee_wrote(message.sender_id, message.text or "", message.metadata, since)
            except Exception as error:  # the message is in the conversation; the advisor sees it in the transcript
                logger.error("could not pass a message to the advisor desk", exc_info=private_exc_info(error))
        return result

    return handle

"""The web chat: a page served by the Rasa server itself and a JSON webhook behind it.

`GET  /webhooks/webchat/`        the chat page (no CDN, works offline on a local network)
`POST /webhooks/webchat/webhook` `{"sender": "...", "message": "...", "language": "fr-FR"}`
                                 answers with the bot's messages, like Rasa's REST channel.
`GET  /webhooks/webchat/messages?sender=...&after=<unix time>`
                                 what advisors (and the desk) wrote to that conversation since
                                 `after`, `{"messages": [{"text", "timestamp"}]}`: the page asks
                                 every few seconds, so an advisor's reply shows without the user
                                 writing first (a web page cannot be written to otherwise).
"""
from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, Iterable, List, Optional, Text

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from rasa.shared.core.events import BotUttered
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from channels.common import agent_of, clean_text, relayed_to_advisor, resolve_numbered_reply
from channels.delivery import retry_after
from channels.logs import private_exc_info

logger = logging.getLogger(__name__)
PAGE = Path(__file__).parent / "static" / "webchat.html"
_SENDER = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


def desk_messages(events: Iterable[Any], after: float) -> List[Dict[Text, Any]]:
    """The messages the advisor desk added to a conversation after `after` (a Unix time): the
    advisor's replies and the hand-back notice, which carry their ticket in their metadata."""
    return [{"text": event.text, "timestamp": event.timestamp} for event in events
            if isinstance(event, BotUttered) and event.text and (event.metadata or {}).get("ticket")
            and event.timestamp > after]


class WebChatOutput(CollectingOutputChannel):
    """Collects the bot's messages to return them in the webhook's response."""

    @classmethod
    def name(cls) -> Text:
        """The channel name NLG shaping and analytics see."""
        return "webchat"


class WebChatInput(InputChannel):
    """The web chat page and its webhook."""

    @classmethod
    def name(cls) -> Text:
        """URL prefix and channel name."""
        return "webchat"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "WebChatInput":
        """The web chat needs no secret."""
        return cls()

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """Routes of the page and the webhook."""
        webchat = Blueprint("webchat_webhook", __name__)
        on_new_message = relayed_to_advisor(on_new_message)

        @webchat.route("/", methods=["GET"])
        async def page(request: Request) -> HTTPResponse:
            return await response.file(str(PAGE), mime_type="text/html; charset=utf-8")

        @webchat.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            try:
                body = request.json
            except Exception:
                body = None
            if not isinstance(body, dict):
                return response.json({"error": "send a JSON object"}, status=400)
            sender = body.get("sender")
            if not isinstance(sender, str) or not _SENDER.match(sender):
                return response.json({"error": "sender must be 8-64 letters, digits, - or _"}, status=400)
            text = clean_text(body.get("message"))
            if not text:
                return response.json({"error": "message must be non-empty text"}, status=400)
            text = await resolve_numbered_reply(request, sender, text)
            hint = body.get("language")
            metadata = {"language_hint": hint.split("-")[0].lower()} if isinstance(hint, str) else {}
            collector = WebChatOutput()
            try:
                await on_new_message(
                    UserMessage(text, collector, sender, input_channel=self.name(), metadata=metadata)
                )
            except Exception as error:  # the conversation store cannot be reached, most likely
                logger.error("web chat: a message could not be processed", exc_info=private_exc_info(error))
                return response.json({"error": "the message could not be processed; send it again shortly"},
                                     status=503, headers={"Retry-After": retry_after()})
            return response.json(collector.messages)

        @webchat.route("/messages", methods=["GET"])
        async def desk_replies(request: Request) -> HTTPResponse:
            sender = request.args.get("sender")
            if not isinstance(sender, str) or not _SENDER.match(sender):
                return response.json({"error": "sender must be 8-64 letters, digits, - or _"}, status=400)
            try:
                after = float(request.args.get("after") or 0)
            except ValueError:
                after = math.nan
            if not math.isfinite(after):
                return response.json({"error": "after must be a Unix time"}, status=400)
            agent = agent_of(request)
            try:
                tracker = await agent.tracker_store.retrieve(sender) if agent else None
            except Exception as error:
                logger.error("web chat: a conversation could not be read", exc_info=private_exc_info(error))
                return response.json({"error": "try again shortly"}, status=503,
                                     headers={"Retry-After": retry_after()})
            return response.json({"messages": desk_messages(tracker.events if tracker else [], after)})

        return webchat

"""The advisor desk as part of the Rasa server: started with it, stopped with it.

Registered in `bot/credentials.yml` like a channel, it serves no route of its own: advisors
write through the Telegram and Twilio webhooks, which hand their messages to the desk. At
start it finds the returnee-facing outputs of the other channels and starts the desk's loop
(announcing tickets, re-announcing waiting ones, releasing silent ones).
"""
from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint

from bot.handoff import desk as desks

logger = logging.getLogger(__name__)


class AdvisorDeskChannel(InputChannel):
    """Starts the advisor desk with the server."""

    @classmethod
    def name(cls) -> Text:
        """Channel name (unused by users)."""
        return "advisors"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "AdvisorDeskChannel":
        """Settings come from the environment (`docs/CHANNELS.md`)."""
        return cls()

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """Only the start and stop listeners."""
        blueprint = Blueprint("advisor_desk", __name__)

        @blueprint.listener("after_server_start")
        async def start(app: Any, loop: Any = None) -> None:
            desk = make_desk(app)
            desks.install(desk)
            desk.start()

        @blueprint.listener("before_server_stop")
        async def stop(app: Any, loop: Any = None) -> None:
            desk = desks.current()
            if desk is not None:
                await desk.stop()
            desks.install(None)

        return blueprint


class _AgentOf:
    """The server's current agent (a model can be replaced while the server runs)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app.ctx.agent, name)


def make_desk(app: Any) -> desks.Desk:
    """A desk using the outputs of the channels this server runs."""
    from channels.telegram import TelegramConfig, make_bot
    from channels.twilio import TwilioConfig, TwilioSender

    outputs: Dict[str, Any] = {}
    for channel in getattr(app.ctx, "input_channels", None) or []:
        if channel.name() in ("telegram", "sms", "whatsapp"):
            output = channel.get_output_channel()
            if output is not None:
                outputs[channel.name()] = output
    telegram_config, twilio_config = TelegramConfig.from_env(), TwilioConfig.from_env()
    telegram = make_bot(telegram_config) if telegram_config else None
    sms = TwilioSender(twilio_config) if twilio_config else None
    settings = desks.DeskSettings.from_env()
    if telegram is None:
        logger.info("Advisor desk: Telegram not configured, advisors work by SMS only")
    elif not settings.telegram_chat_id:
        logger.info("Advisor desk: TELEGRAM_ADVISORS_CHAT_ID not set; only programmes with their own group are served")
    return desks.Desk(_AgentOf(app), outputs, telegram, sms, settings)

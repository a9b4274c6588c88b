"""Telegram, with python-telegram-bot's own types and async bot.

Webhook mode (`TELEGRAM_MODE=webhook`): Telegram posts updates to
`/webhooks/telegram/webhook`; each request must carry `X-Telegram-Bot-Api-Secret-Token` equal
to `TELEGRAM_WEBHOOK_SECRET` (403 otherwise). Long-polling mode (`TELEGRAM_MODE=polling`, the
default without a secret) needs only `TELEGRAM_BOT_TOKEN`: the server asks Telegram for updates
itself, for a laptop with no public URL. `TELEGRAM_API_BASE` points the bot at another Bot API
server (a local one, or the tests' stand-in).

Private chats talk to the assistant. In groups the bot answers only when addressed, and invites
the user to a private chat: loans and papers are not for a group's eyes.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import html
import json
import logging
import os
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Dict, List, Mapping, Optional, Text, Tuple

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatAction, ParseMode
from telegram.error import (BadRequest, ChatMigrated, Forbidden, InvalidToken, NetworkError,
                            RetryAfter, TelegramError)

from bot.i18n import available_languages
from bot.menus import payload_for_reply
from channels.common import agent_of, clean_text, relayed_to_advisor
from channels.delivery import (is_paused, process_once, record_status, renderer_for_user, retry_after,
                               send_with_retry, split_long, tracker_of)
from channels.logs import describe, scrub, who

logger = logging.getLogger(__name__)
_HTTP_LOG = logging.getLogger("httpx")  # logs every Bot API URL, bot token included, at INFO
if _HTTP_LOG.level == logging.NOTSET:
    _HTTP_LOG.setLevel(logging.WARNING)

MAX_MESSAGE_LENGTH = 4096
MAX_CALLBACK_DATA = 64  # bytes
POLL_TIMEOUT = 25  # seconds Telegram holds a getUpdates call open
TYPING_EVERY = 4.5  # seconds; Telegram shows "typing" for 5
ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "my_chat_member"]
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
COMMANDS = {"start": "/greet", "help": "/help", "menu": "/help", "language": "/choose_language",
            "advisor": "/request_advisor"}
MEDIA_KINDS = ("voice", "audio", "video_note", "video", "photo", "document", "sticker",
               "animation", "location", "venue", "contact", "poll", "dice", "story")

OnNewMessage = Callable[[UserMessage], Awaitable[Any]]


@dataclass(frozen=True)
class TelegramConfig:
    """The Telegram settings, read from the environment."""

    token: str
    mode: str  # "webhook" or "polling"
    secret: Optional[str] = None
    api_base: Optional[str] = None
    webhook_url: Optional[str] = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Optional["TelegramConfig"]:
        """The settings, or None (with one log line saying why) when the channel cannot run."""
        token = env.get("TELEGRAM_BOT_TOKEN", "").strip()
        secret = env.get("TELEGRAM_WEBHOOK_SECRET", "").strip() or None
        mode = env.get("TELEGRAM_MODE", "").strip().lower() or ("webhook" if secret else "polling")
        if not token:
            logger.info("Telegram: TELEGRAM_BOT_TOKEN not set, channel skipped")
            return None
        if mode not in ("webhook", "polling"):
            logger.error("Telegram: TELEGRAM_MODE must be webhook or polling, not %r; channel skipped", mode)
            return None
        if mode == "webhook" and not secret:
            logger.error("Telegram: webhook mode needs TELEGRAM_WEBHOOK_SECRET, not set; channel skipped")
            return None
        return cls(token, mode, secret, env.get("TELEGRAM_API_BASE", "").strip() or None,
                   env.get("TELEGRAM_WEBHOOK_URL", "").strip() or None)


def make_bot(config: TelegramConfig) -> Bot:
    """The async bot, talking to Telegram or to the Bot API server at `TELEGRAM_API_BASE`."""
    if config.api_base:
        base = config.api_base.rstrip("/")
        return Bot(config.token, base_url=f"{base}/bot", base_file_url=f"{base}/file/bot")
    return Bot(config.token)


def _chat_id(recipient_id: Text) -> Any:
    return int(recipient_id) if recipient_id.lstrip("-").isdigit() else recipient_id


def classify(error: BaseException) -> Tuple[bool, Optional[float]]:
    """Whether a failed Bot API call is worth retrying, and how long Telegram asked to wait."""
    if isinstance(error, RetryAfter):
        wait = error.retry_after
        return True, wait.total_seconds() if isinstance(wait, dt.timedelta) else float(wait)
    if isinstance(error, (Forbidden, BadRequest, ChatMigrated, InvalidToken)):
        return False, None
    return isinstance(error, (NetworkError, OSError, asyncio.TimeoutError)), None


def keyboard(buttons: List[Dict[Text, Any]]) -> Optional[InlineKeyboardMarkup]:
    """Buttons as an inline keyboard, one per row. A payload too long for Telegram's 64 bytes of
    callback data is sent as "#<n>", resolved against the latest menu when pressed."""
    rows = []
    for number, button in enumerate(buttons, 1):
        title = str(button.get("title") or button.get("payload") or number)
        if button.get("url"):
            rows.append([InlineKeyboardButton(title, url=button["url"])])
            continue
        payload = str(button.get("payload") or title)
        data = payload if len(payload.encode("utf-8")) <= MAX_CALLBACK_DATA else f"#{number}"
        rows.append([InlineKeyboardButton(title, callback_data=data)])
    return InlineKeyboardMarkup(rows) if rows else None


class TelegramOutput(OutputChannel):
    """Sends the assistant's messages to a Telegram chat (HTML parse mode, text escaped)."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    @classmethod
    def name(cls) -> Text:
        """The channel name NLG shaping and analytics see."""
        return "telegram"

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        """Sends `text`, split at paragraphs when longer than Telegram allows."""
        await self.send_text(recipient_id, text)

    async def send_text_with_buttons(self, recipient_id: Text, text: Text, buttons: List[Dict[Text, Any]],
                                     **kwargs: Any) -> None:
        """Sends `text` with its buttons as an inline keyboard under the last part."""
        await self.send_text(recipient_id, text, keyboard(buttons))

    async def send_image_url(self, recipient_id: Text, image: Text, **kwargs: Any) -> None:
        """Sends a photo by URL."""
        await self._call(recipient_id, "sendPhoto", lambda: self.bot.send_photo(_chat_id(recipient_id), photo=image))

    async def send_attachment(self, recipient_id: Text, attachment: Any, **kwargs: Any) -> None:
        """Sends a document by URL."""
        if isinstance(attachment, str):
            await self._call(recipient_id, "sendDocument",
                             lambda: self.bot.send_document(_chat_id(recipient_id), document=attachment))

    async def send_custom_json(self, recipient_id: Text, json_message: Dict[Text, Any], **kwargs: Any) -> None:
        """Custom payloads are meant for other channels; Telegram shows none."""
        logger.debug("Telegram: custom payload not shown to %s", who(recipient_id))

    async def send_text(self, recipient_id: Text, text: Text,
                        markup: Optional[InlineKeyboardMarkup] = None) -> bool:
        """Sends `text` in as many messages as it takes; False if Telegram refused one."""
        parts = split_long(text or "", MAX_MESSAGE_LENGTH) or [""]
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            if not part.strip() and not (last and markup):
                continue
            sent = await self._call(recipient_id, "sendMessage", lambda part=part, last=last: self.bot.send_message(
                _chat_id(recipient_id), html.escape(part, quote=False) or "\u2063",
                parse_mode=ParseMode.HTML, reply_markup=markup if last else None))
            if not sent:
                return False
        return True

    async def _call(self, recipient_id: Text, method: str, send: Callable[[], Awaitable[Any]]) -> bool:
        outcome = await send_with_retry(send, classify, f"Telegram {method} to {who(recipient_id)}")
        if outcome.ok:
            message_id = getattr(outcome.result, "message_id", None)
            await record_status("telegram", message_id and f"{recipient_id}:{message_id}", recipient_id,
                                "sent", attempts=outcome.attempts)
            return True
        await record_status("telegram", None, recipient_id, "failed", type(outcome.error).__name__,
                            outcome.error, outcome.attempts)
        if isinstance(outcome.error, Forbidden):
            await opt_out(recipient_id, str(outcome.error))
        return False


async def opt_out(chat_id: Text, reason: str, strict: bool = False) -> None:
    """The user blocked the bot (or left): no more reminders to them. A failure to record it is
    logged; with `strict` (an update Telegram will send again) it raises."""
    from bot import profiles

    logger.info("Telegram: %s opted out (%s)", who(chat_id), scrub(reason))
    try:
        await asyncio.to_thread(profiles.opt_out, chat_id, "telegram")
    except Exception as error:  # recording the opt-out must not break the send that revealed it
        logger.error("Telegram: could not record the opt-out of %s (%s)", who(chat_id), describe(error))
        if strict:
            raise


def _media_of(message: Message) -> Optional[Tuple[str, Optional[str]]]:
    """(kind, file_id) of a message that carries no text: voice, photo, sticker, location..."""
    for kind in MEDIA_KINDS:
        value = getattr(message, kind, None)
        if value:
            value = value[-1] if isinstance(value, (tuple, list)) else value
            return kind, getattr(value, "file_id", None)
    return None


def advisors_desk(update: Update) -> Any:
    """The advisor desk, when the update comes from an advisors' group; else None."""
    from bot.handoff import desk as desks

    desk = desks.current()
    chat = update.effective_chat
    if desk is None or chat is None or chat.type == "private":
        return None
    return desk if desk.is_advisors_chat(chat.id) else None


class TelegramInput(InputChannel):
    """Telegram updates, by webhook or by long polling, into the assistant."""

    def __init__(self, config: Optional[TelegramConfig]) -> None:
        self.config = config
        self.bot = make_bot(config) if config else None
        self._on_new_message: Optional[OnNewMessage] = None
        self._username: Optional[str] = None
        self._poller: Optional[asyncio.Task] = None

    @classmethod
    def name(cls) -> Text:
        """URL prefix, channel name, and the `output_channel` Rasa's API matches."""
        return "telegram"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "TelegramInput":
        """Reads the settings from the environment (see `docs/CHANNELS.md`)."""
        config = TelegramConfig.from_env()
        if config and config.mode == "webhook":
            logger.info("Telegram: webhook mode, updates at /webhooks/telegram/webhook")
        elif config:
            logger.info("Telegram: long-polling mode (no public URL needed)")
        return cls(config)

    def get_output_channel(self) -> Optional[OutputChannel]:
        """The output for messages the assistant starts itself (reminders, advisors)."""
        return TelegramOutput(self.bot) if self.bot else None

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        """The webhook route, or the polling task's start and stop; nothing when skipped."""
        self._on_new_message = relayed_to_advisor(on_new_message)
        telegram = Blueprint("telegram_webhook", __name__)
        if self.config is None:
            return telegram
        if self.config.mode == "polling":
            telegram.listener("after_server_start")(self._start_polling)
            telegram.listener("before_server_stop")(self._stop)
            return telegram
        if self.config.webhook_url:
            telegram.listener("after_server_start")(self._set_webhook)
        telegram.listener("before_server_stop")(self._stop)

        @telegram.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            given = request.headers.get(SECRET_HEADER, "")
            if not hmac.compare_digest(given.encode("utf-8"), self.config.secret.encode("utf-8")):
                return response.json({"error": f"missing or wrong {SECRET_HEADER}"}, status=403)
            try:
                data = json.loads(request.body or b"")
            except ValueError:
                return response.json({"error": "the body is not JSON"}, status=400)
            if not isinstance(data, dict) or type(data.get("update_id")) is not int:
                return response.json({"error": "not a Telegram update: no integer update_id"}, status=400)
            try:
                update = Update.de_json(data, self.bot)
            except Exception:  # the library rejects a malformed update in several ways
                if not set(data) & set(ALLOWED_UPDATES):  # a kind we ignore anyway, maybe newer than us
                    return response.json({"status": "ignored"})
                return response.json({"error": "not a Telegram update"}, status=400)
            chat = update.effective_chat or update.effective_user
            if chat is not None and (type(chat.id) is not int or abs(chat.id) >= 2 ** 63):  # Telegram's ids fit 64 bits
                return response.json({"error": "not a Telegram update: a chat or user id is not an integer"},
                                     status=400)
            effect, status = await self.accept(update, agent_of(request))
            if status != 200:
                return response.json({"error": "the update could not be processed; retry later"}, status=status,
                                     headers={"Retry-After": retry_after()})
            return response.json({"status": effect})

        return telegram

    # ---- lifecycle ----------------------------------------------------------------------

    async def _set_webhook(self, app: Any, loop: Any = None) -> None:
        try:
            await self.bot.set_webhook(self.config.webhook_url, secret_token=self.config.secret,
                                       allowed_updates=ALLOWED_UPDATES)
            logger.info("Telegram: webhook registered at %s", self.config.webhook_url)
        except TelegramError as error:
            logger.error("Telegram: could not register the webhook %s: %s", self.config.webhook_url, error)

    async def _start_polling(self, app: Any, loop: Any = None) -> None:
        self._poller = asyncio.get_running_loop().create_task(self.poll(app))

    async def _stop(self, app: Any, loop: Any = None) -> None:
        if self._poller:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
        await self.bot.shutdown()

    async def poll(self, app: Any) -> None:
        """Fetches updates from Telegram until cancelled (long-polling mode)."""
        try:
            await self.bot.delete_webhook()
        except TelegramError as error:
            logger.warning("Telegram: could not remove a webhook before polling: %s", error)
        offset, failures = None, 0
        while True:
            try:
                updates = await self.bot.get_updates(offset=offset, timeout=POLL_TIMEOUT,
                                                     allowed_updates=ALLOWED_UPDATES)
                failures = 0
            except (InvalidToken, Forbidden) as error:
                logger.error("Telegram: the bot token was rejected (%s); polling stopped", error)
                return
            except TelegramError as error:
                failures += 1
                logger.warning("Telegram: getUpdates failed (%s); retrying", error)
                await asyncio.sleep(min(30, 2 ** failures))
                continue
            for update in updates:
                effect, _ = await self.accept(update, getattr(app.ctx, "agent", None))
                if effect in ("unavailable", "busy"):  # not taken in: fetched again after a pause
                    await asyncio.sleep(float(retry_after()))
                    break
                offset = update.update_id + 1

    # ---- updates ------------------------------------------------------------------------

    async def accept(self, update: Update, agent: Any) -> Tuple[str, int]:
        """Processes an update once: (what was done, HTTP status). 503 (Telegram retries any
        non-2xx) when the database cannot be reached, when processing failed, and when another
        replica is still processing the same update."""
        chat = update.effective_chat or update.effective_user
        sender = str(chat.id) if chat else "unknown"
        return await process_once("telegram", update.update_id, sender, lambda: self.process(update, agent))

    async def process(self, update: Update, agent: Any) -> str:
        """Acts on one update; returns what was done (message, callback, media, ignored...)."""
        if update.my_chat_member:
            member = update.my_chat_member
            if member.chat is None or member.new_chat_member is None:  # the library lets a garbled one through
                return "ignored"
            if member.chat.type == "private" and member.new_chat_member.status == "kicked":
                await opt_out(str(member.chat.id), "blocked the bot", strict=True)
                return "opted_out"
            return "ignored"
        desk = advisors_desk(update)
        if desk is not None:
            return await desk.on_telegram(update)
        if update.callback_query:
            return await self._callback(update, agent)
        message = update.message or update.edited_message
        if message is None or message.chat is None:
            return "ignored"
        if message.chat.type != "private":
            return await self._group(message)
        user = message.from_user
        hint = user.language_code if user else None
        text = clean_text(message.text or message.caption)
        if not text:
            media = _media_of(message)
            return await self._media(message, media, hint, agent) if media else "ignored"
        metadata: Dict[str, Any] = {"edited": True} if update.edited_message else {}
        if text.startswith("/"):
            text, deep_link = self._command(text)
            if deep_link:
                metadata["deep_link"] = deep_link
                hint = deep_link if deep_link in available_languages() else hint
        await self._to_rasa(str(message.chat.id), text, hint, metadata, agent, update.update_id)
        return "edited" if update.edited_message else "message"

    @staticmethod
    def _command(text: str) -> Tuple[str, Optional[str]]:
        """A command as the assistant understands it, and the /start deep-link payload."""
        command, _, argument = text[1:].partition(" ")
        command = command.split("@", 1)[0].lower()
        deep_link = (argument.strip()[:64] or None) if command == "start" else None
        if command in COMMANDS:
            return COMMANDS[command], deep_link
        return text[1:], None

    async def _callback(self, update: Update, agent: Any) -> str:
        query = update.callback_query
        try:
            await self.bot.answer_callback_query(query.id)
        except TelegramError as error:
            logger.warning("Telegram: could not answer a button press: %s", describe(error))
        message = query.message
        data = clean_text(query.data)
        if message is None or message.chat is None or message.chat.type != "private" or not data:
            return "ignored"
        sender = str(message.chat.id)
        if data.startswith("#"):
            tracker = await tracker_of(agent, sender)
            data = payload_for_reply(data[1:], list(tracker.events)) if tracker else None
            if not data:
                return "ignored"
        hint = query.from_user.language_code if query.from_user else None
        await self._to_rasa(sender, data, hint, {}, agent, update.update_id)
        return "callback"

    async def _to_rasa(self, sender: str, text: str, hint: Optional[str], metadata: Dict[str, Any],
                       agent: Any, update_id: int) -> None:
        if not text.startswith("/") and len(text) <= 6:
            tracker = await tracker_of(agent, sender)
            text = (payload_for_reply(text, list(tracker.events)) if tracker else None) or text
        if hint:
            metadata = {"language_hint": hint, **metadata}
        typing = await self._typing(sender)
        try:
            await self._on_new_message(UserMessage(text, TelegramOutput(self.bot), sender, input_channel="telegram",
                                                   metadata=metadata or None, message_id=f"tg-{update_id}"))
        finally:
            typing.cancel()

    async def _typing(self, chat_id: str) -> asyncio.Task:
        """Shows "typing" now and every few seconds until the returned task is cancelled."""
        async def keep_typing() -> None:
            try:
                while True:
                    await asyncio.sleep(TYPING_EVERY)
                    await self.bot.send_chat_action(_chat_id(chat_id), ChatAction.TYPING)
            except TelegramError as error:
                logger.debug("Telegram: typing action failed: %s", error)

        try:
            await self.bot.send_chat_action(_chat_id(chat_id), ChatAction.TYPING)
        except TelegramError as error:
            logger.debug("Telegram: typing action failed: %s", error)
        return asyncio.get_running_loop().create_task(keep_typing())

    async def _media(self, message: Message, media: Tuple[str, Optional[str]], hint: Optional[str],
                     agent: Any) -> str:
        """A voice note, photo, sticker...: a kind reply; the advisor gets it when they hold the
        conversation (it is written to the tracker with the file's id for them)."""
        sender = str(message.chat.id)
        tracker = await tracker_of(agent, sender)
        renderer = await renderer_for_user(sender, tracker, hint)
        kind, file_id = media
        key = "utter_media_received"
        if is_paused(tracker):
            await self._on_new_message(UserMessage(
                f"[{kind}]", TelegramOutput(self.bot), sender, input_channel="telegram",
                metadata={"media": {"type": kind, "file_id": file_id}, **({"language_hint": hint} if hint else {})}))
            key = "utter_media_to_advisor"
        await TelegramOutput(self.bot).send_text(sender, renderer.render(key))
        return "media_to_advisor" if key == "utter_media_to_advisor" else "media"

    async def _group(self, message: Message) -> str:
        """In a group, answers only when addressed, with an invitation to a private chat."""
        username = await self._bot_username()
        if not self._addressed(message, username):
            return "ignored"
        user = message.from_user
        renderer = await renderer_for_user(str(user.id) if user else "", None, user.language_code if user else None)
        buttons = [{"title": renderer.render("btn.private_chat"), "url": f"https://t.me/{username}?start=group"}] \
            if username else []
        await TelegramOutput(self.bot).send_text(str(message.chat.id), renderer.render("telegram.group_private"),
                                                 keyboard(buttons))
        return "group_redirect"

    def _addressed(self, message: Message, username: Optional[str]) -> bool:
        bot_id = int(self.config.token.split(":", 1)[0]) if self.config.token.split(":", 1)[0].isdigit() else None
        reply = message.reply_to_message
        if reply is not None and reply.from_user is not None and reply.from_user.id == bot_id:
            return True
        for entity, text in message.parse_entities(["bot_command", "mention"]).items():
            target = text.split("@", 1)[1].lower() if "@" in text else None
            if entity.type == "bot_command" and target in (None, (username or "").lower()):
                return True
            if entity.type == "mention" and username and target == username.lower():
                return True
        return False

    async def _bot_username(self) -> Optional[str]:
        if self._username is None:
            try:
                self._username = (await self.bot.get_me()).username
            except TelegramError as error:
                logger.warning("Telegram: getMe failed: %s", error)
        return self._username

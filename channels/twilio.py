"""SMS and WhatsApp through Twilio: one webhook, answers on the channel the user wrote on.

`POST /webhooks/twilio/webhook` takes Twilio's messaging webhook and `POST /webhooks/twilio/status`
its delivery status callbacks; both check `X-Twilio-Signature` against `TWILIO_PUBLIC_URL`
(403 otherwise). A sender `whatsapp:+216...` is a WhatsApp user, `+216...` an SMS user; the
sender id keeps that prefix so replies go back the same way. Replies are sent with twilio's
async HTTP client (`TWILIO_API_BASE` points it at another server, such as the tests' stand-in).

Two classes are registered in `bot/credentials.yml`: `TwilioInput` serves the webhook and is the
"sms" channel; `WhatsAppChannel` serves nothing and is the "whatsapp" channel, so that Rasa's API
(`output_channel=whatsapp`, reminders) can reach WhatsApp users.

STOP, START and HELP (in the six languages) opt out, opt back in and explain; MORE sends the
next page of a long SMS. Outside WhatsApp's 24-hour customer-care window a message goes out as
the approved template configured for the user's language, its text in the template's variable.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import re
import string
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Dict, List, Mapping, Optional, Text, Tuple
from urllib.parse import parse_qsl

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from bot.i18n import Renderer, available_languages
from bot.menus import payload_for_reply
from bot.text import normalize
from channels.common import agent_of, clean_text, relayed_to_advisor
from channels.delivery import (is_paused, last_inbound, lease_wait, next_page, process_once, record_status,
                               renderer_for_user, retry_after, save_pages, send_with_retry, split_long,
                               tracker_of)
from channels.logs import describe, who
from channels.sms import paginate, prefer_gsm7

logger = logging.getLogger(__name__)

WHATSAPP_PREFIX = "whatsapp:"
WHATSAPP_MAX_LENGTH = 1600  # Twilio's limit for a WhatsApp body
TEMPLATE_VARIABLE_MAX = 1000  # WhatsApp's limit on a template variable is 1024
CARE_WINDOW = dt.timedelta(hours=24)
SIGNATURE_HEADER = "X-Twilio-Signature"
UNSUBSCRIBED = 21610  # Twilio: the recipient replied STOP
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
KEYWORDS = ("stop", "start", "help", "more")
_SID = re.compile(r"[A-Za-z0-9]{2,64}")
MAX_ADDRESS = 128  # characters of a sender id in our tables
_PUNCTUATION = re.compile(r"[\s" + re.escape(string.punctuation) + "«»“”‘’،؛؟۔!¡¿]+")

_logged: set = set()
_HTTP_LOG = logging.getLogger(__name__ + ".http")  # twilio logs every request at INFO: kept quieter
if _HTTP_LOG.level == logging.NOTSET:
    _HTTP_LOG.setLevel(logging.WARNING)


def _log_once(message: str, *args: Any, level: int = logging.INFO) -> None:
    """One line per reason, although two classes read the same settings."""
    line = message % args
    if line not in _logged:
        _logged.add(line)
        logger.log(level, line)


def _templates(spec: str) -> Dict[str, str]:
    """`TWILIO_WHATSAPP_TEMPLATES`: "en=HX...,fr=HX...,*=HX..." (`*`: any other language)."""
    templates = {}
    for item in spec.split(","):
        language, _, sid = item.partition("=")
        if language.strip() and sid.strip():
            templates[language.strip()] = sid.strip()
    return templates


@dataclass(frozen=True)
class TwilioConfig:
    """The Twilio settings, read from the environment."""

    account_sid: str
    auth_token: str
    public_url: str
    from_sms: Optional[str] = None
    from_whatsapp: Optional[str] = None
    messaging_service_sid: Optional[str] = None
    api_base: Optional[str] = None
    whatsapp_templates: Dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Optional["TwilioConfig"]:
        """The settings, or None (with one log line saying why) when the channel cannot run."""
        get = lambda name: env.get(name, "").strip() or None  # noqa: E731
        missing = [n for n in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_PUBLIC_URL") if not get(n)]
        if missing:
            _log_once("Twilio: %s not set, channel skipped", ", ".join(missing))
            return None
        if not (get("TWILIO_FROM_SMS") or get("TWILIO_FROM_WHATSAPP") or get("TWILIO_MESSAGING_SERVICE_SID")):
            _log_once("Twilio: none of TWILIO_FROM_SMS, TWILIO_FROM_WHATSAPP, TWILIO_MESSAGING_SERVICE_SID set, "
                      "channel skipped")
            return None
        whatsapp = get("TWILIO_FROM_WHATSAPP")
        if whatsapp and not whatsapp.startswith(WHATSAPP_PREFIX):
            whatsapp = WHATSAPP_PREFIX + whatsapp
        return cls(get("TWILIO_ACCOUNT_SID"), get("TWILIO_AUTH_TOKEN"), get("TWILIO_PUBLIC_URL").rstrip("/"),
                   get("TWILIO_FROM_SMS"), whatsapp, get("TWILIO_MESSAGING_SERVICE_SID"), get("TWILIO_API_BASE"),
                   _templates(get("TWILIO_WHATSAPP_TEMPLATES") or ""))


class Form(dict):
    """A form post: each field's first value, and `getlist` for all of them (as the signature
    check needs). Empty fields are kept: Twilio signs them too."""

    def __init__(self, body: bytes) -> None:
        self.lists: Dict[str, List[str]] = {}
        for name, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
            self.lists.setdefault(name, []).append(value)
        super().__init__({name: values[0] for name, values in self.lists.items()})

    def getlist(self, name: str) -> List[str]:
        """Every value of the field `name`."""
        return self.lists.get(name, [])


def well_formed(sid: str, address: str) -> bool:
    """Whether a MessageSid and an address (From, To) look like Twilio's and fit our tables: a
    malformed one can never be stored, so it gets a 400, not a 503 Twilio would retry."""
    return bool(_SID.fullmatch(sid)) and len(address) <= MAX_ADDRESS and clean_text(address) == address


def channel_of(address: str) -> str:
    """"whatsapp" for a `whatsapp:+...` address, else "sms"."""
    return "whatsapp" if address.startswith(WHATSAPP_PREFIX) else "sms"


def classify(error: BaseException) -> Tuple[bool, Optional[float]]:
    """Whether a failed Twilio call is worth retrying: throttling, server errors, the network."""
    if isinstance(error, TwilioRestException):
        return error.status == 429 or error.status >= 500, None
    import aiohttp

    return isinstance(error, (aiohttp.ClientError, asyncio.TimeoutError, OSError)), None


class TwilioSender:
    """Sends messages with twilio's async client, records their status, never raises."""

    def __init__(self, config: TwilioConfig) -> None:
        self.config = config
        self._client: Optional[Client] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None

    def client(self) -> Client:
        """The client of the running event loop (its HTTP session belongs to one loop)."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = Client(self.config.account_sid, self.config.auth_token,
                                  http_client=AsyncTwilioHttpClient(timeout=15, logger=_HTTP_LOG))
            if self.config.api_base:
                self._client.api.base_url = self.config.api_base.rstrip("/")
            self._loop = loop
        return self._client

    async def close(self) -> None:
        """Closes the HTTP session."""
        if self._client is not None:
            await self._client.http_client.close()
            self._client = None

    async def send(self, to: str, body: Optional[str] = None, content_sid: Optional[str] = None,
                   variables: Optional[Dict[str, str]] = None) -> bool:
        """Sends a text (or a template) to `to`; False when Twilio refused it for good."""
        channel = channel_of(to)
        arguments: Dict[str, Any] = {"to": to, "status_callback": f"{self.config.public_url}/webhooks/twilio/status"}
        sender = self.config.from_whatsapp if channel == "whatsapp" else self.config.from_sms
        if sender:
            arguments["from_"] = sender
        else:
            arguments["messaging_service_sid"] = self.config.messaging_service_sid
        if content_sid:
            arguments.update(content_sid=content_sid, content_variables=json.dumps(variables or {}, ensure_ascii=False))
        else:
            arguments["body"] = body
        outcome = await send_with_retry(lambda: self.client().messages.create_async(**arguments),
                                        classify, f"Twilio {channel} message to {who(to)}")
        if outcome.ok:
            await record_status(channel, outcome.result.sid, to, outcome.result.status or "queued",
                                attempts=outcome.attempts)
            return True
        error = outcome.error
        code = getattr(error, "code", None) or type(error).__name__
        await record_status(channel, None, to, "failed", code, getattr(error, "msg", None) or error, outcome.attempts)
        if code == UNSUBSCRIBED:
            await set_opted_out(to, True)
        return False


async def set_opted_out(sender_id: str, opted_out: bool, strict: bool = False) -> None:
    """Records a STOP (no more reminders) or a START. A failure is logged; with `strict` (a
    webhook Twilio can send again) it raises, so nothing is answered that was not recorded."""
    from bot import profiles

    change = profiles.opt_out if opted_out else profiles.opt_in
    try:
        await asyncio.to_thread(change, sender_id, channel_of(sender_id))
    except Exception as error:  # a send's outcome: the log tells staff
        logger.error("Twilio: could not record opted_out=%s for %s (%s)", opted_out, who(sender_id), describe(error))
        if strict:
            raise


class SmsOutput(OutputChannel):
    """Sends replies by SMS: the pages the NLG shaped, the next ones kept for MORE."""

    def __init__(self, sender: TwilioSender) -> None:
        self.sender = sender

    @classmethod
    def name(cls) -> Text:
        """The channel name NLG shaping (numbered menu, pages) and analytics see."""
        return "sms"

    async def send_response(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        """Sends the first page; keeps the others until the user replies MORE."""
        pages = message.get("sms_pages") or await self._pages(recipient_id, message.get("text") or "")
        pages = [p for p in pages if p.strip()]
        if not pages:
            return
        if await self.sender.send(recipient_id, pages[0]) and len(pages) > 1:
            await save_pages(recipient_id, pages[1:])

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        """Sends `text`, paged within the SMS budget."""
        await self.send_response(recipient_id, {"text": text})

    @staticmethod
    async def _pages(recipient_id: str, text: str) -> List[str]:
        renderer = await renderer_for_user(recipient_id)
        return paginate(prefer_gsm7(text), prefer_gsm7(renderer.render("sms.more")))


class WhatsAppOutput(OutputChannel):
    """Sends replies on WhatsApp: free text in the 24-hour window, else the approved template."""

    def __init__(self, sender: TwilioSender) -> None:
        self.sender = sender

    @classmethod
    def name(cls) -> Text:
        """The channel name NLG shaping (numbered menu) and analytics see."""
        return "whatsapp"

    async def send_response(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        """Sends the text (numbered menu included by the NLG)."""
        text = message.get("text") or ""
        if text.strip():
            await self.send_text_message(recipient_id, text, language=message.get("language"))

    async def send_text_message(self, recipient_id: Text, text: Text, language: Optional[str] = None,
                                **kwargs: Any) -> None:
        """Sends `text` as free text, in parts, or outside the care window as the template of
        `language` (the language the text is in; else the user's)."""
        last = await last_inbound("whatsapp", recipient_id)
        if last is not None and dt.datetime.now(dt.timezone.utc) - last < CARE_WINDOW:
            for part in split_long(text, WHATSAPP_MAX_LENGTH):
                if not await self.sender.send(recipient_id, part):
                    return
            return
        language = language or (await renderer_for_user(recipient_id)).language
        templates = self.sender.config.whatsapp_templates
        content_sid = templates.get(language) or templates.get("*")
        if not content_sid:
            logger.error("WhatsApp: %s is outside the 24-hour window and no template is configured for %r "
                         "(TWILIO_WHATSAPP_TEMPLATES); message not sent", who(recipient_id), language)
            await record_status("whatsapp", None, recipient_id, "failed", "no_template", "outside the 24-hour window")
            return
        flat = " ".join(text.split())
        if len(flat) > TEMPLATE_VARIABLE_MAX:
            flat = flat[:TEMPLATE_VARIABLE_MAX - 1].rsplit(" ", 1)[0] + "…"
        await self.sender.send(recipient_id, content_sid=content_sid, variables={"1": flat})


def keyword_of(text: str) -> Tuple[Optional[str], List[str]]:
    """The keyword (stop, start, help, more) a whole message is, and the languages that have it."""
    word = normalize(_PUNCTUATION.sub(" ", text)).casefold().strip()
    if not word or len(word) > 30 or text.lstrip().startswith("/"):  # "/help" is a button's payload
        return None, []
    for keyword in KEYWORDS:
        languages = [language for language in available_languages()
                     if word in _keywords(language, keyword)]
        if languages:
            return keyword, languages
    return None, []


def _keywords(language: str, keyword: str) -> set:
    words = Renderer(language).gettext(f"keywords.{keyword}") if language in available_languages() else ""
    return {normalize(w).casefold().strip() for w in words.split("|") if w.strip()}


class TwilioInput(InputChannel):
    """Twilio's messaging webhook for SMS and WhatsApp; also the "sms" channel of Rasa's API."""

    def __init__(self, config: Optional[TwilioConfig]) -> None:
        self.config = config
        self.sender = TwilioSender(config) if config else None
        self.validator = RequestValidator(config.auth_token) if config else None

    @classmethod
    def name(cls) -> Text:
        """The channel name of SMS users, and the `output_channel` Rasa's API matches."""
        return "sms"

    def url_prefix(self) -> Text:
        """`/webhooks/twilio/...`"""
        return "twilio"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "TwilioInput":
        """Reads the settings from the environment (see `docs/CHANNELS.md`)."""
        config = TwilioConfig.from_env()
        if config:
            _log_once("Twilio: SMS and WhatsApp webhook at /webhooks/twilio/webhook, signed for %s", config.public_url)
        return cls(config)

    def get_output_channel(self) -> Optional[OutputChannel]:
        """The output for messages the assistant starts itself to SMS users."""
        return SmsOutput(self.sender) if self.sender else None

    def output_for(self, sender_id: str) -> OutputChannel:
        """The output that answers `sender_id` on the channel they wrote on."""
        return WhatsAppOutput(self.sender) if channel_of(sender_id) == "whatsapp" else SmsOutput(self.sender)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """The message and status webhooks; nothing when the channel is skipped."""
        twilio = Blueprint("twilio_webhook", __name__)
        if self.config is None:
            return twilio
        on_new_message = relayed_to_advisor(on_new_message)

        @twilio.listener("before_server_stop")
        async def close(app: Any, loop: Any = None) -> None:
            await self.sender.close()

        @twilio.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            form = Form(request.body or b"")
            problem = self._check(request, form)
            if problem:
                return problem
            sid, sender = form.get("MessageSid") or form.get("SmsSid"), form.get("From")
            if not sid or not sender:
                return response.json({"error": "MessageSid and From are required"}, status=400)
            if not well_formed(sid, sender):
                return response.json({"error": "MessageSid or From is malformed"}, status=400)
            effect, status = await self.accept(form, on_new_message, agent_of(request))
            if status != 200:
                return response.json({"error": "the message could not be processed; retry later"}, status=status,
                                     headers={"Retry-After": retry_after()})
            return response.text(EMPTY_TWIML, content_type="text/xml", headers={"X-Effect": effect})

        @twilio.route("/status", methods=["POST"])
        async def status(request: Request) -> HTTPResponse:
            form = Form(request.body or b"")
            problem = self._check(request, form)
            if problem:
                return problem
            sid, state, to = form.get("MessageSid"), form.get("MessageStatus"), form.get("To")
            if not sid or not state or not to:
                return response.json({"error": "MessageSid, MessageStatus and To are required"}, status=400)
            if not well_formed(sid, to):
                return response.json({"error": "MessageSid or To is malformed"}, status=400)
            code = form.get("ErrorCode")
            try:
                await record_status(channel_of(to), sid, to, state.lower(), code, form.get("ErrorMessage"), strict=True)
                if code == str(UNSUBSCRIBED):
                    await set_opted_out(to, True, strict=True)
            except Exception:  # logged; Twilio may send the callback again
                return response.json({"error": "the status could not be recorded; retry later"}, status=503,
                                     headers={"Retry-After": retry_after()})
            return response.empty()

        return twilio

    def _check(self, request: Request, form: Form) -> Optional[HTTPResponse]:
        """A 4xx response for a request not signed by Twilio or not a form, else None."""
        if not (request.content_type or "").startswith("application/x-www-form-urlencoded"):
            return response.json({"error": "expected an application/x-www-form-urlencoded form"}, status=400)
        url = self.config.public_url + request.path + (f"?{request.query_string}" if request.query_string else "")
        signature = request.headers.get(SIGNATURE_HEADER, "")
        if not signature or not self.validator.validate(url, form, signature):
            return response.json({"error": f"missing or wrong {SIGNATURE_HEADER} for {url}"}, status=403)
        return None

    async def accept(self, form: Any, on_new_message: Callable[[UserMessage], Awaitable[Any]],
                     agent: Any) -> Tuple[str, int]:
        """Processes a message once: (what was done, HTTP status). 503 when the database cannot
        be reached or processing failed (retried by Twilio with a retry policy in the webhook URL's
        connection overrides, or sent to the fallback URL).

        A redelivery of a message another replica is handling waits up to one lease: a replica
        killed mid-message stops renewing it, and the message is processed here, inside the 15 s
        Twilio gives a webhook and all its retries. Still renewed after that wait, the other
        replica is alive and will answer: the redelivery is acknowledged (200) as a duplicate,
        since a 503 would only log an error at Twilio and call the fallback URL into the same wait."""
        sid, sender = form.get("MessageSid") or form.get("SmsSid"), form.get("From")
        return await process_once(channel_of(sender), sid, sender, lambda: self.process(form, on_new_message, agent),
                                  wait=lease_wait(), busy=("in_progress", 200))

    async def process(self, form: Any, on_new_message: Callable[[UserMessage], Awaitable[Any]], agent: Any) -> str:
        """Acts on one message; returns what was done (message, stopped, more, media...)."""
        sender = form.get("From")
        text = clean_text(form.get("Body"))
        output = self.output_for(sender)
        handled = await self._advisor(sender, text)
        if handled:
            return handled
        try:
            media_count = int(form.get("NumMedia") or 0)
        except ValueError:
            media_count = 0
        keyword, languages = keyword_of(text) if text else (None, [])
        if keyword == "more":
            page = await next_page(sender)
            if page:
                await self.sender.send(sender, page)
                return "more"
        elif keyword:
            return await self._keyword(keyword, languages, sender, form.get("OptOutType"), agent)
        elif str(form.get("OptOutType") or "").lower() in ("stop", "start", "help"):
            # a word only Twilio's Advanced Opt-Out knows (a "YES" re-subscribes); Twilio has answered
            return await self._keyword(form["OptOutType"].lower(), [], sender, form["OptOutType"], agent)
        if text:
            await save_pages(sender, [])
        tracker = await tracker_of(agent, sender) if (not text and media_count) or len(text) <= 6 else None
        if not text:
            return await self._media(sender, form, media_count, tracker, on_new_message) if media_count else "ignored"
        if tracker is not None:
            text = payload_for_reply(text, list(tracker.events)) or text
        await on_new_message(UserMessage(text, output, sender, input_channel=channel_of(sender),
                                         message_id=form.get("MessageSid")))
        return "message"

    async def _advisor(self, sender: str, text: str) -> Optional[str]:
        """A registered advisor's command goes to the advisor desk; a desk command from anyone
        else is refused and logged. None: a returnee's message, for the assistant."""
        from bot.handoff import advisors, desk as desks

        desk = desks.current()
        if desk is None:
            return None
        advisor = await asyncio.to_thread(advisors.find, channel_of(sender), sender)
        if advisor is not None:
            return "advisor_" + await desk.on_sms(advisor, text)
        if desks.SMS_COMMAND.match(text or "") and re.match(r"^\s*#\s*\d+\s+\S", text):
            logger.warning("Twilio: refused an advisor command from an unregistered %s sender", channel_of(sender))
            renderer = await renderer_for_user(sender, None)
            await self.sender.send(sender, prefer_gsm7(renderer.render("desk.not_advisor")))
            return "refused"
        return None

    async def _keyword(self, keyword: str, languages: List[str], sender: str, handled_by_twilio: Optional[str],
                       agent: Any) -> str:
        """STOP, START, HELP: recorded, and answered in the language of the word used."""
        if keyword == "stop":
            await set_opted_out(sender, True, strict=True)
        elif keyword == "start":
            await set_opted_out(sender, False, strict=True)
        if not handled_by_twilio:  # with Advanced Opt-Out, Twilio has already answered
            renderer = await renderer_for_user(sender, await tracker_of(agent, sender))
            if renderer.language not in languages:
                renderer = Renderer(languages[0], None, renderer.currency, renderer.timezone)
            key = {"stop": "sms.stopped", "start": "sms.started", "help": "sms.help"}[keyword]
            await self.sender.send(sender, prefer_gsm7(renderer.render(key)))
        return {"stop": "stopped", "start": "started", "help": "help"}[keyword]

    async def _media(self, sender: str, form: Any, media_count: int, tracker: Any,
                     on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> str:
        """A photo or voice message: a kind reply; the advisor gets it when they hold the conversation."""
        renderer = await renderer_for_user(sender, tracker)
        key = "utter_media_received"
        if is_paused(tracker):
            media = [{"type": form.get(f"MediaContentType{i}"), "url": form.get(f"MediaUrl{i}")}
                     for i in range(min(media_count, 10))]
            await on_new_message(UserMessage("[media]", self.output_for(sender), sender, input_channel=channel_of(sender),
                                             metadata={"media": media}, message_id=form.get("MessageSid")))
            key = "utter_media_to_advisor"
        await self.sender.send(sender, prefer_gsm7(renderer.render(key)))
        return "media_to_advisor" if key == "utter_media_to_advisor" else "media"


class WhatsAppChannel(TwilioInput):
    """The "whatsapp" channel of Rasa's API (reminders to WhatsApp users); it serves no route,
    WhatsApp messages arrive on `TwilioInput`'s webhook."""

    @classmethod
    def name(cls) -> Text:
        """The channel name of WhatsApp users."""
        return "whatsapp"

    def url_prefix(self) -> Text:
        """Unused: no route."""
        return "whatsapp"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "WhatsAppChannel":
        """The same settings as `TwilioInput`."""
        return cls(TwilioConfig.from_env())

    def get_output_channel(self) -> Optional[OutputChannel]:
        """The output for messages the assistant starts itself to WhatsApp users."""
        return WhatsAppOutput(self.sender) if self.sender else None

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """No routes; the HTTP session is closed when the server stops."""
        whatsapp = Blueprint("whatsapp_outbound", __name__)
        if self.sender is not None:
            @whatsapp.listener("before_server_stop")
            async def close(app: Any, loop: Any = None) -> None:
                await self.sender.close()
        return whatsapp

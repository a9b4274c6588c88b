"""Bad input on every public HTTP endpoint: a clear 4xx, the acknowledgement the protocol needs,
or a polite reply; never a 5xx, never a crash, and nothing already stored lost.

The endpoints are the ones `bot/credentials.yml` registers (Telegram, Twilio messages and
statuses, the web chat, Rasa's REST channel, the advisor desk, which serves no route and is
reached through the Telegram and Twilio webhooks), the staff dashboard, and the load balancer
of `make run-prod`. Each channel runs in a `ChannelServer` with a stand-in agent whose tracker
store is the real PostgreSQL of this machine, which refuses what SQLite lets through (NUL
characters, over-long keys): a 503 there would make Telegram and Twilio retry a request that can
never succeed. Bad bodies to the signed webhooks are signed (Twilio) or carry the secret
(Telegram), so that they reach the parser.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple
from urllib.parse import urlencode

import aiohttp
import pytest
import requests
import sqlalchemy as sa
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st
from rasa.core.channels import BUILTIN_CHANNELS
from rasa.shared.core.events import UserUttered
from rasa.shared.utils.common import class_from_module_path

from bot import profiles, storage
from bot.dashboard import models as dashboard_models
from bot.handoff import advisors, desk as desks
from bot.i18n import Renderer
from bot.loadbalancer import LoadBalancer
from channels import delivery
from channels.advisors import AdvisorDeskChannel
from channels.sms import prefer_gsm7
from channels.telegram import TelegramConfig, TelegramOutput, make_bot
from channels.twilio import Form, SmsOutput, TwilioSender, WhatsAppOutput
from tests.standins import ChannelServer, TelegramStandIn, TwilioStandIn
from tests.test_channel_telegram import SECRET, TOKEN as TELEGRAM_TOKEN, headers as telegram_headers
from tests.test_channel_twilio import ACCOUNT, HOOK as TWILIO_HOOK, STATUS as TWILIO_STATUS, TOKEN as TWILIO_TOKEN
from tests.test_channel_twilio import config as twilio_config, signed
from tests.test_dashboard_support import ADMIN, STAFF, Server, app_database_on_postgres, csrf_of, login
from tests.test_faults_db_down import TrackerAgent

ROOT = Path(__file__).resolve().parent.parent
TELEGRAM_HOOK, WEBCHAT_HOOK = "/webhooks/telegram/webhook", "/webhooks/webchat/webhook"
REST_HOOK = "/webhooks/rest/webhook"
MEGABYTE = 1024 * 1024
MIXED = "سلام hello 👋 \u200fمرحبا\u200e ۱۲۳ ١٢٣ \u202eabc\u202c"  # Arabic, Latin, emoji, RTL/LTR marks, two digit sets
CONTROLS = "a\x00b\x07c\x1b[31md\x7f\x9be\u0085f"
KEPT_TELEGRAM, KEPT_SMS, KEPT_WEB = "5551230001", "+21650000001", "kept-webchat-0001"
SMS_ADVISOR, TELEGRAM_ADVISOR, GROUP = "+21671000100", 4242, -100777
_ids = itertools.count(880_000_000)
_sids = itertools.count(1)


# ---- the database, the stand-ins, the servers -----------------------------------------------

@pytest.fixture(scope="module")
def postgres(database_url):
    """A fresh PostgreSQL database for the app's tables and the tracker store of this module."""
    from bot.tracker_store import PrivacySQLTrackerStore

    name = f"bad_input_{os.getpid()}"
    with app_database_on_postgres(name) as url:
        store = PrivacySQLTrackerStore(dialect="postgresql", host="127.0.0.1", port=5432, db=name,
                                       username="postgres")
        try:
            yield url, store
        finally:
            store.engine.dispose()


@pytest.fixture(scope="module")
def apis():
    """The Telegram and Twilio API stand-ins."""
    telegram, twilio = TelegramStandIn(TELEGRAM_TOKEN), TwilioStandIn(ACCOUNT, TWILIO_TOKEN)
    yield telegram, twilio
    telegram.close()
    twilio.close()


def registered_channels() -> Dict[str, type]:
    """The input channel classes `bot/credentials.yml` registers, by their key."""
    credentials = yaml.safe_load((ROOT / "bot" / "credentials.yml").read_text(encoding="utf-8"))
    return {key: BUILTIN_CHANNELS[key] if key in BUILTIN_CHANNELS else class_from_module_path(key)
            for key in credentials}


def channel_of_class(key: str) -> type:
    """The registered class of a credentials key (so the test serves what production serves)."""
    return registered_channels()[key]


@dataclass
class Site:
    """Every channel server of the module, sharing one stand-in agent and one tracker store."""

    agent: TrackerAgent
    servers: Dict[str, ChannelServer]
    telegram_api: TelegramStandIn
    twilio_api: TwilioStandIn
    store: Any


def kept() -> Dict[str, Any]:
    """What the database holds of the seeded rows (compared before and after each request)."""
    with storage.engine().connect() as db:
        people = db.execute(sa.text("SELECT sender_id, channel, language, opted_out FROM profiles "
                                    "WHERE sender_id IN (:a, :b) ORDER BY sender_id"),
                            {"a": KEPT_TELEGRAM, "b": KEPT_SMS}).all()
        events = db.execute(sa.text("SELECT type_name, data FROM events WHERE sender_id = :s ORDER BY id"),
                            {"s": KEPT_WEB}).all()
        statuses = db.execute(sa.text("SELECT message_id, recipient_id, status FROM delivery_statuses "
                                      "WHERE recipient_id = :r"), {"r": KEPT_SMS}).all()
        advisor_rows = db.execute(sa.text("SELECT channel, contact, active FROM advisors ORDER BY id")).all()
    return {"profiles": [tuple(r) for r in people], "events": [tuple(r) for r in events],
            "statuses": [tuple(r) for r in statuses], "advisors": [tuple(r) for r in advisor_rows]}


@pytest.fixture(scope="module")
async def site(postgres, apis):
    """The Telegram, Twilio, web chat and REST channels (the classes `bot/credentials.yml`
    registers) on their own servers, the advisor desk installed, the seeded rows stored."""
    _, store = postgres
    telegram_api, twilio_api = apis
    profiles.remember(KEPT_TELEGRAM, "telegram", language="ar")
    profiles.remember(KEPT_SMS, "sms", language="fr")
    tracker = await store.get_or_create_tracker(KEPT_WEB, append_action_listen=False)
    tracker.update(UserUttered("keep this message", input_channel="webchat"))
    await store.save(tracker)
    await delivery.record_status("sms", "SM" + "0" * 31 + "k", KEPT_SMS, "delivered")
    advisors.add("Amal", "sms", SMS_ADVISOR, None, ("ar",))
    advisors.add("Karim", "telegram", str(TELEGRAM_ADVISOR), None, ("fr",))

    agent = TrackerAgent(store)
    channels = {
        "telegram": channel_of_class("channels.telegram.TelegramInput")(
            TelegramConfig(TELEGRAM_TOKEN, "webhook", SECRET, telegram_api.url)),
        "twilio": channel_of_class("channels.twilio.TwilioInput")(twilio_config(twilio_api)),
        "webchat": channel_of_class("channels.webchat.WebChatInput")(),
        "rest": channel_of_class("channels.rest.RestInput")(),
    }
    bot = make_bot(TelegramConfig(TELEGRAM_TOKEN, "webhook", SECRET, telegram_api.url))
    sender = TwilioSender(twilio_config(twilio_api))
    desks.install(desks.Desk(agent, {"telegram": TelegramOutput(bot), "sms": SmsOutput(sender),
                                     "whatsapp": WhatsAppOutput(sender)}, bot, sender,
                             desks.DeskSettings(telegram_chat_id=str(GROUP))))
    servers = {name: ChannelServer(channel, agent) for name, channel in channels.items()}
    for server in servers.values():
        await server.__aenter__()
    try:
        yield Site(agent, servers, telegram_api, twilio_api, store)
    finally:
        desks.install(None)
        for server in servers.values():
            await server.__aexit__(None, None, None)
        await sender.close()
        await bot.shutdown()


# ---- one table of requests --------------------------------------------------------------

@dataclass
class Case:
    """One request to one endpoint and what must come of it.

    `statuses`: the acceptable answers. `text`: what the assistant must receive (None: nothing
    reaches it). `reply`: (language, key) of a text the channel itself must send back.
    """

    endpoint: str
    name: str
    body: bytes
    headers: Dict[str, str]
    statuses: Tuple[int, ...]
    text: Any = None
    reply: Optional[Tuple[str, str]] = None


ANY = object()  # a Case's `text` when what reaches the assistant is not checked


def as_json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


# -- Telegram -------------------------------------------------------------------------------

def private_message(text: Any = "hello", chat_id: Any = 5551230002, language: str = "fr", **extra: Any) -> dict:
    """A private text message update, under a fresh update_id."""
    message = {"message_id": next(_ids), "date": int(time.time()),
               "from": {"id": chat_id, "is_bot": False, "first_name": "Amina", "language_code": language},
               "chat": {"id": chat_id, "type": "private", "first_name": "Amina"}, **extra}
    if text is not None:
        message["text"] = text
    return {"update_id": next(_ids), "message": message}


def group_press(data: str, user: int = TELEGRAM_ADVISOR) -> dict:
    chat = {"id": GROUP, "type": "supergroup", "title": "Advisors"}
    return {"update_id": next(_ids), "callback_query": {
        "id": f"cb{next(_ids)}", "chat_instance": "9", "data": data,
        "from": {"id": user, "is_bot": False, "first_name": "Karim", "language_code": "fr"},
        "message": {"message_id": 1, "chat": chat, "date": int(time.time()), "text": "…"}}}


def group_text(text: str, reply_to: int = 999_999, user: int = TELEGRAM_ADVISOR) -> dict:
    chat = {"id": GROUP, "type": "supergroup", "title": "Advisors"}
    bot = TelegramStandIn.BOT
    return {"update_id": next(_ids), "message": {
        "message_id": next(_ids), "date": int(time.time()), "chat": chat, "text": text,
        "from": {"id": user, "is_bot": False, "first_name": "Karim"},
        "reply_to_message": {"message_id": reply_to, "chat": chat, "date": int(time.time()), "from": bot,
                             "text": "…"}}}


def telegram_cases() -> Iterator[Case]:
    ok = telegram_headers()

    def tg(name: str, body: Any, statuses: Tuple[int, ...], text: Optional[str] = None, headers=None,
           reply=None) -> Case:
        raw = body if isinstance(body, bytes) else as_json(body)
        return Case("telegram", name, raw, ok if headers is None else headers, statuses, text, reply)

    yield tg("malformed JSON", b'{"update_id": 1, "message": {', (400,))
    yield tg("a JSON array", b"[1, 2, 3]", (400,))
    yield tg("a JSON number", b"42", (400,))
    yield tg("a JSON string", b'"hello"', (400,))
    yield tg("JSON null", b"null", (400,))
    yield tg("an empty body", b"", (400,))
    yield tg("a form body", b"update_id=1&message=hello", (400,),
             headers={**ok, "Content-Type": "application/x-www-form-urlencoded"})
    yield tg("1 MB of text", private_message("ق" * MEGABYTE), (200,), text="ق" * 4096)
    raw = as_json(private_message("PLACEHOLDER")).replace(b"PLACEHOLDER", b"caf\xe9 \xff\xfe\xc3")
    yield tg("invalid UTF-8", raw, (400,))
    yield tg("control characters and NUL", private_message(CONTROLS), (200,), text="abc[31mdef")
    yield tg("mixed scripts", private_message(MIXED, language="ar"), (200,), text=MIXED)
    yield tg("a lone surrogate escape", as_json(private_message("x")).replace(b'"text": "x"', b'"text": "a\\ud800b"'),
             (200, 400), text=ANY)
    yield tg("an empty message", private_message(""), (200,))
    yield tg("a blank message", private_message(" \n\t\u200b "), (200,))
    yield tg("no text at all", private_message(None), (200,))
    yield tg("text that is a number", private_message(12345), (200,))
    yield tg("text that is an object", private_message({"a": [1]}), (200, 400), text=ANY)
    yield tg("unknown extra fields", {**private_message("bonjour", future={"x": 1}), "brand_new": [1, {}]}, (200,),
             text="bonjour")
    yield tg("an update of a kind we do not know", {"update_id": next(_ids), "business_message": {"x": 1}}, (200,))
    yield tg("only an update_id", {"update_id": next(_ids)}, (200,))
    yield tg("no update_id", {"message": private_message()["message"]}, (400,))
    yield tg("update_id as a string", {**private_message(), "update_id": "12"}, (400,))
    yield tg("update_id as true", {**private_message(), "update_id": True}, (400,))
    yield tg("a huge update_id", {**private_message("hi"), "update_id": 10 ** 30}, (200,), text="hi")
    no_chat = private_message()
    del no_chat["message"]["chat"]
    yield tg("a message without its chat", no_chat, (200, 400))
    no_type = private_message()
    del no_type["message"]["chat"]["type"]
    yield tg("a chat without its type", no_type, (400,))
    yield tg("a chat member update with no parts", {"update_id": next(_ids), "my_chat_member": {"x": {}}}, (200,))
    yield tg("a button press on a message with no chat", {"update_id": next(_ids), "callback_query": {
        "id": "cb2", "chat_instance": "1", "data": "/help", "from": {"id": 5551230004, "is_bot": False,
                                                                      "first_name": "A"},
        "message": {"message_id": 1, "date": 1}}}, (200,))
    yield tg("a chat id with NUL", private_message("hi", chat_id="55\x00512"), (400,))
    yield tg("a chat id of 1 MB", private_message("hi", chat_id="5" * MEGABYTE), (400,))
    yield tg("a chat id of 200 digits", private_message("hi", chat_id=10 ** 200), (400,))
    yield tg("a language code of 1 MB with NUL", private_message("hi", language="fr\x00" * 1000), (200,), text="hi")
    yield tg("a sticker with a strange field", private_message(None, language="fa", sticker={
        "file_id": "CAAD", "file_unique_id": "u", "type": "regular", "width": 1, "height": 1, "is_animated": False,
        "is_video": False, "emoji": "\u200f🙂", "future": {"x": None}}), (200,), reply=("fa", "utter_media_received"))
    yield tg("a button press with 1 MB of data", {"update_id": next(_ids), "callback_query": {
        "id": "cb1", "chat_instance": "1", "data": "/" + "x\x00" * (MEGABYTE // 2),
        "from": {"id": 5551230003, "is_bot": False, "first_name": "A"},
        "message": {"message_id": 1, "date": 1, "chat": {"id": 5551230003, "type": "private"}}}}, (200,),
             text="/" + "x" * 4095)
    yield tg("valid JSON sent as text/plain", private_message("salut"), (200,), text="salut",
             headers={**ok, "Content-Type": "text/plain"})
    yield tg("no secret", private_message("hi"), (403,), headers={"Content-Type": "application/json"})
    yield tg("a wrong secret and a bad body", b"[", (403,), headers=telegram_headers("wrong"))
    yield tg("a secret in another script", private_message("hi"), (403,),
             headers={**ok, "X-Telegram-Bot-Api-Secret-Token": "سر"})
    # the advisor desk, reached through the advisors' group
    yield tg("desk: a button for ticket ²", group_press("take:²"), (200,))
    yield tg("desk: a button for ticket 10^20", group_press("take:" + "9" * 20), (200,))
    yield tg("desk: a button with NUL", group_press("quick:1:\x00"), (200,))
    yield tg("desk: 1 MB of reply to an unknown post", group_text("x" * MEGABYTE), (200,))
    yield tg("desk: a command with NUL and mixed scripts", group_text("/close " + MIXED + "\x00"), (200,))


# -- Twilio -------------------------------------------------------------------------------------

def sms(body: Any = "hello", sender: str = "+21650000002", **extra: str) -> Dict[str, str]:
    """The fields of an inbound SMS, under a fresh MessageSid."""
    sid = f"SM{next(_sids):032x}"
    fields = {"ToCountry": "TN", "SmsMessageSid": sid, "NumMedia": "0", "SmsSid": sid, "SmsStatus": "received",
              "To": "+21670000001", "NumSegments": "1", "MessageSid": sid, "AccountSid": ACCOUNT, "From": sender,
              "ApiVersion": "2010-04-01"}
    if body is not None:
        fields["Body"] = body
    fields.update(extra)
    return fields


def encode(fields: Dict[str, str]) -> bytes:
    from urllib.parse import urlencode

    return urlencode(fields).encode("ascii")


def twilio_case(name: str, body: Any, statuses: Tuple[int, ...], text: Optional[str] = None, path: str = TWILIO_HOOK,
                headers: Optional[Dict[str, str]] = None, reply=None) -> Case:
    """A request signed over what the webhook's parser reads from `body` (fields or raw bytes)."""
    raw = body if isinstance(body, bytes) else encode(body)
    endpoint = "twilio" if path == TWILIO_HOOK else "twilio-status"
    return Case(endpoint, name, raw, signed(Form(raw), path) if headers is None else headers, statuses, text, reply)


def twilio_cases() -> Iterator[Case]:
    form_type = {"Content-Type": "application/x-www-form-urlencoded"}
    yield twilio_case("a malformed form", b"&&=&Body=%ZZ%&From&=x=y&%", (400,))
    yield twilio_case("a JSON object", as_json(sms()), (400,), headers={
        **signed(Form(as_json(sms()))), "Content-Type": "application/json"})
    for name, raw in (("a JSON array", b"[1, 2]"), ("a JSON number", b"42"), ("a JSON string", b'"hi"'),
                      ("an empty body", b"")):
        yield twilio_case(name, raw, (400,))
    yield twilio_case("1 MB of text", sms("x" * MEGABYTE), (200,), text="x" * 4096)
    raw = encode(sms("PLACEHOLDER")).replace(b"PLACEHOLDER", b"caf\xe9+%FF%FE+ok")
    yield twilio_case("invalid UTF-8", raw, (200,), text="caf\ufffd \ufffd\ufffd ok")
    yield twilio_case("control characters and NUL", sms(CONTROLS), (200,), text="abc[31mdef")
    yield twilio_case("mixed scripts", sms(MIXED), (200,), text=MIXED)
    yield twilio_case("STOP in Arabic between RTL marks", sms("\u200fتوقف\u200f!", "+21650000003"), (200,),
                      reply=("ar", "sms.stopped"))
    yield twilio_case("an empty message", sms(""), (200,))
    yield twilio_case("no Body at all", sms(None), (200,))
    yield twilio_case("a strange NumMedia", sms("", NumMedia="-7"), (200,))
    yield twilio_case("NumMedia not a number", sms("hi", NumMedia="lots"), (200,), text="hi")
    yield twilio_case("unknown extra fields", sms("bonjour", FutureField="x", **{"": "", "a b": "ن"}), (200,),
                      text="bonjour")
    yield twilio_case("repeated fields", encode(sms("first")) + b"&Body=second&From=%2B1", (200,), text="first")
    missing_from = sms()
    del missing_from["From"]
    yield twilio_case("no From", missing_from, (400,))
    missing_sid = {k: v for k, v in sms().items() if k not in ("MessageSid", "SmsSid", "SmsMessageSid")}
    yield twilio_case("no MessageSid", missing_sid, (400,))
    yield twilio_case("a From with NUL", sms("hi", "+2165\x000000"), (400,))
    yield twilio_case("a From of 1 MB", sms("hi", "+" + "1" * MEGABYTE), (400,))
    yield twilio_case("a MessageSid with NUL", {**sms("hi"), "MessageSid": "SM\x00x", "SmsSid": "SM\x00x"}, (400,))
    yield twilio_case("a MessageSid of 1 MB", {**sms("hi"), "MessageSid": "SM" + "a" * MEGABYTE}, (400,))
    yield twilio_case("a wrong Content-Type", sms("hi"), (400,), headers={**signed(sms("hi")),
                                                                         "Content-Type": "text/plain"})
    yield twilio_case("unsigned", sms("hi"), (403,), headers=form_type)
    yield twilio_case("unsigned and malformed", b"%%%", (403,), headers=form_type)
    # the advisor desk, reached by a registered SMS advisor
    yield twilio_case("desk: a bare #", sms("#", SMS_ADVISOR), (200,))
    yield twilio_case("desk: an unknown ticket", sms("#123456789 TAKE", SMS_ADVISOR), (200,))
    yield twilio_case("desk: a ticket in Arabic digits", sms("#٣ CLOSE", SMS_ADVISOR), (200,))
    yield twilio_case("desk: 1 MB to a ticket", sms("#1 " + "y" * MEGABYTE, SMS_ADVISOR), (200,))
    yield twilio_case("desk: NUL and mixed scripts", sms("#1 CLOSE \x00" + MIXED, SMS_ADVISOR), (200,))
    yield twilio_case("desk: a command from an outsider", sms("#1 hello", "+21650000004"), (200,))

    def status(**fields: str) -> Dict[str, str]:
        base = {"MessageSid": f"SM{next(_sids):032x}", "MessageStatus": "delivered", "To": "+21650000005",
                "AccountSid": ACCOUNT, "ApiVersion": "2010-04-01"}
        return {k: v for k, v in {**base, **fields}.items() if v is not None}

    yield twilio_case("status: malformed", b"MessageStatus&&%", (400,), path=TWILIO_STATUS)
    yield twilio_case("status: a JSON array", b"[1]", (400,), path=TWILIO_STATUS)
    yield twilio_case("status: no MessageStatus", status(MessageStatus=None), (400,), path=TWILIO_STATUS)
    yield twilio_case("status: no To", status(To=None), (400,), path=TWILIO_STATUS)
    yield twilio_case("status: unknown status of 1 MB", status(MessageStatus="Z" * MEGABYTE), (204,),
                      path=TWILIO_STATUS)
    yield twilio_case("status: mixed scripts and NUL in the error", status(ErrorMessage=MIXED + "\x00",
                                                                           ErrorCode="٣٠٠٠٣"), (204,),
                      path=TWILIO_STATUS)
    yield twilio_case("status: NUL in the MessageSid", status(MessageSid="SM\x00"), (400,), path=TWILIO_STATUS)
    yield twilio_case("status: NUL in To", status(To="+216\x00"), (400,), path=TWILIO_STATUS)
    yield twilio_case("status: a MessageSid of 1 MB", status(MessageSid="S" * MEGABYTE), (400,), path=TWILIO_STATUS)
    yield twilio_case("status: a wrong Content-Type", status(), (400,), path=TWILIO_STATUS,
                      headers={**signed(status(), TWILIO_STATUS), "Content-Type": "application/json"})
    yield twilio_case("status: unsigned", status(), (403,), path=TWILIO_STATUS, headers=form_type)


# -- the web chat and Rasa's REST channel (the same JSON shape) ---------------------------------

def json_cases(endpoint: str) -> Iterator[Case]:
    ok = {"Content-Type": "application/json"}
    sender = f"{endpoint}-sender-0001"

    def case(name: str, body: Any, statuses: Tuple[int, ...], text: Optional[str] = None, headers=None) -> Case:
        raw = body if isinstance(body, bytes) else as_json(body)
        return Case(endpoint, name, raw, ok if headers is None else headers, statuses, text)

    yield case("malformed JSON", b'{"sender": "abc', (400,))
    yield case("a JSON array", b'[{"sender": "x", "message": "hi"}]', (400,))
    yield case("a JSON number", b"42", (400,))
    yield case("a JSON string", b'"hi"', (400,))
    yield case("JSON null", b"null", (400,))
    yield case("an empty body", b"", (400,))
    yield case("a form body", b"sender=abcdefgh&message=hi", (400,),
               headers={"Content-Type": "application/x-www-form-urlencoded"})
    yield case("1 MB of text", {"sender": sender, "message": "م" * MEGABYTE}, (200,), text="م" * 4096)
    yield case("invalid UTF-8", b'{"sender": "' + sender.encode() + b'", "message": "\xff\xfe\xc3"}', (400,))
    yield case("control characters and NUL", {"sender": sender, "message": CONTROLS}, (200,), text="abc[31mdef")
    yield case("mixed scripts", {"sender": sender, "message": MIXED, "language": "ar"}, (200,), text=MIXED)
    yield case("an empty message", {"sender": sender, "message": ""}, (400,))
    yield case("a blank message", {"sender": sender, "message": " \n\x00 "}, (400,))
    yield case("a message that is an object", {"sender": sender, "message": {"text": "hi"}}, (400,))
    yield case("unknown extra fields", {"sender": sender, "message": "salut", "future": [1, {"a": None}]}, (200,),
               text="salut")
    yield case("no sender", {"message": "hi"}, (400,))
    yield case("no message", {"sender": sender}, (400,))
    yield case("a sender with NUL", {"sender": "abc\x00defgh", "message": "hi"}, (400,))
    yield case("a sender of 1 MB", {"sender": "s" * MEGABYTE, "message": "hi"}, (400,))
    yield case("a sender that is a number", {"sender": 12345678, "message": "hi"}, (400,))
    yield case("metadata that is not an object", {"sender": sender, "message": "hi", "metadata": [1]}, (200, 400),
               text=ANY)
    yield case("a language that is not text", {"sender": sender, "message": "hola", "language": ["es"]}, (200,),
               text="hola")
    yield case("valid JSON sent as text/plain", {"sender": sender, "message": "hi"}, (200,), text="hi",
               headers={"Content-Type": "text/plain"})


CASES: List[Case] = [*telegram_cases(), *twilio_cases(), *json_cases("webchat"), *json_cases("rest")]
PATHS = {"telegram": TELEGRAM_HOOK, "twilio": TWILIO_HOOK, "twilio-status": TWILIO_STATUS,
         "webchat": WEBCHAT_HOOK, "rest": REST_HOOK}
SERVER_OF = {"twilio-status": "twilio"}


def test_every_registered_channel_is_in_the_table():
    """A channel added to `bot/credentials.yml` without bad-input cases fails here."""
    covered = {"channels.telegram.TelegramInput", "channels.twilio.TwilioInput", "channels.webchat.WebChatInput",
               "channels.rest.RestInput",
               "channels.twilio.WhatsAppChannel",  # no route: WhatsApp arrives on TwilioInput's webhook
               "channels.advisors.AdvisorDeskChannel"}  # no route: reached by the Telegram and Twilio cases
    assert set(registered_channels()) == covered
    assert {c.endpoint for c in CASES} == set(PATHS)


@pytest.mark.parametrize("case", CASES, ids=[f"{c.endpoint}: {c.name}" for c in CASES])
async def test_bad_input_gets_a_clear_answer_and_loses_nothing(site, case):
    server = site.servers[SERVER_OF.get(case.endpoint, case.endpoint)]
    site.agent.messages.clear()
    site.telegram_api.clear()
    site.twilio_api.clear()
    before = kept()
    status, body = await server.post(PATHS[case.endpoint], case.body, case.headers)
    assert status in case.statuses, f"{status}: {body[:500]}"
    if 400 <= status < 500:  # a clear reason (Rasa's REST channel words it in Sanic's own format)
        assert body.strip() if case.endpoint == "rest" else "error" in json.loads(body), body[:500]
    received = [m.text for m in site.agent.messages if m.sender_id not in (SMS_ADVISOR, str(TELEGRAM_ADVISOR))]
    if case.text is None:
        assert received == [], received
    elif case.text is not ANY:
        assert received == [case.text]
        replies = site.telegram_api.sent("sendMessage") + site.twilio_api.sent("Messages.json")
        assert replies or case.endpoint in ("webchat", "rest"), "the assistant's reply was not sent"
        if case.endpoint in ("webchat", "rest"):
            assert json.loads(body) == [{"recipient_id": site.agent.messages[0].sender_id, "text": "ok"}]
    if case.reply is not None:
        language, key = case.reply
        expected = Renderer(language).render(key)
        sent = [r.params.get("text") or r.params.get("Body") for r in
                site.telegram_api.sent("sendMessage") + site.twilio_api.sent("Messages.json")]
        assert prefer_gsm7(expected) in [prefer_gsm7(s) for s in sent] or expected in sent, sent
    assert kept() == before


async def test_the_advisor_desk_serves_no_route_of_its_own(site):
    """Registered like a channel, the desk answers nothing but 404 (and starts and stops cleanly)."""
    installed = desks.current()
    async with ChannelServer(AdvisorDeskChannel()) as server:
        answers = [await server.post(f"/webhooks/advisors{path}", body, headers) for path, body, headers in [
            ("/webhook", b"[", {"Content-Type": "application/json"}),
            ("/webhook", b"\xff\x00", {"Content-Type": "application/x-www-form-urlencoded"}),
            ("/", b"", {})]]
    stopped = desks.current()
    desks.install(installed)  # the module's desk, for the property tests
    assert [status for status, _ in answers] == [404, 404, 404]
    assert stopped is None


# ---- property tests on the two signed webhooks ---------------------------------------------

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
SCALARS = st.none() | st.booleans() | st.integers(-2 ** 63, 2 ** 63) | st.floats(allow_nan=False) | TEXT
JSONISH = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
                       max_leaves=12)
UPDATE_KEYS = st.sampled_from(["message", "edited_message", "callback_query", "my_chat_member", "channel_post",
                               "poll_answer", "text", "chat", "from", "data"])
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                           HealthCheck.too_slow])


@st.composite
def updates(draw) -> dict:
    """Telegram-ish updates: arbitrary JSON, or a private message with arbitrary parts."""
    kind = draw(st.integers(0, 2))
    if kind == 0:
        return draw(st.dictionaries(UPDATE_KEYS | TEXT, JSONISH, max_size=5))
    if kind == 1:
        return {"update_id": draw(st.integers(0, 2 ** 40)),
                **draw(st.dictionaries(UPDATE_KEYS, st.dictionaries(UPDATE_KEYS | TEXT, JSONISH, max_size=5),
                                       max_size=2))}
    update = private_message(draw(TEXT | JSONISH), chat_id=draw(st.integers(1, 2 ** 40) | TEXT),
                             language=draw(TEXT))
    message = update["message"]
    for key, value in draw(st.dictionaries(UPDATE_KEYS | TEXT, JSONISH, max_size=3)).items():
        message[key] = value
    return update


@PROPERTY
@given(update=updates())
async def test_no_telegram_update_gets_a_5xx(site, update):
    status, body = await site.servers["telegram"].post(TELEGRAM_HOOK, as_json(update), telegram_headers())
    assert status < 500, f"{status}: {body[:300]} for {update!r:.300}"


FIELD_NAMES = st.sampled_from(["Body", "From", "To", "NumMedia", "MediaUrl0", "MediaContentType0", "OptOutType",
                               "MessageSid", "SmsSid"]) | TEXT


@PROPERTY
@given(fields=st.dictionaries(FIELD_NAMES, TEXT, max_size=8), keep_ids=st.booleans(), body=TEXT,
       sender=st.sampled_from(["+21650000010", "whatsapp:+93700000010", SMS_ADVISOR]) | TEXT)
async def test_no_twilio_form_gets_a_5xx(site, fields, keep_ids, body, sender):
    if keep_ids:  # most posts carry a MessageSid and a sender, so the other fields reach the processing
        fields = {**sms(body, sender), **{k: v for k, v in fields.items() if k not in ("MessageSid", "SmsSid", "From")}}
    raw = encode(fields)
    status, answer = await site.servers["twilio"].post(TWILIO_HOOK, raw, signed(Form(raw)))
    assert status < 500, f"{status}: {answer[:300]} for {fields!r:.300}"
    status, answer = await site.servers["twilio"].post(TWILIO_STATUS, raw, signed(Form(raw), TWILIO_STATUS))
    assert status < 500, f"{status}: {answer[:300]} for {fields!r:.300}"


@PROPERTY
@given(sender=st.sampled_from([KEPT_WEB]) | TEXT, after=st.sampled_from(["0", "1e308", "-1", "inf", "nan"]) | TEXT,
       extra=st.dictionaries(TEXT, TEXT, max_size=3))
async def test_no_query_of_the_web_chat_messages_gets_a_5xx(site, sender, after, extra):
    query = urlencode({**extra, "sender": sender, "after": after})
    async with aiohttp.ClientSession() as client:
        async with client.get(f"{site.servers['webchat'].url}/webhooks/webchat/messages?{query}") as answer:
            body = await answer.json(content_type=None)
    assert answer.status in (200, 400), f"{answer.status}: {body!r:.300} for {query:.300}"
    assert ("messages" in body) == (answer.status == 200)


async def test_the_stored_rows_are_the_seeded_ones(site):
    """The table compares the seeded rows before and after each request; after the table and the
    property tests, every one of them is still there, unchanged."""
    rows = kept()
    assert rows["profiles"] == [(KEPT_SMS, "sms", "fr", False), (KEPT_TELEGRAM, "telegram", "ar", False)]
    assert [r[0] for r in rows["events"]] == ["user"] and "keep this message" in rows["events"][0][1]
    assert rows["statuses"] == [("SM" + "0" * 31 + "k", KEPT_SMS, "delivered")]
    assert sorted(r[0] for r in rows["advisors"]) == ["sms", "telegram"]


async def test_the_web_chat_page_and_the_rest_health_check_ignore_odd_queries(site):
    """The two GET routes of the channels read nothing from the request: odd queries change
    nothing, and a URL longer than the server reads is a 4xx."""
    statuses = []
    async with aiohttp.ClientSession() as client:
        for server, path in ((site.servers["webchat"], "/webhooks/webchat/"),
                             (site.servers["rest"], "/webhooks/rest/")):
            for length in (100, 5000):
                async with client.get(f"{server.url}{path}?%00=%ff&lang=" + "ع" * length,
                                      headers={"Accept-Language": "\x7f" * 100}) as answer:
                    statuses.append(answer.status)
    assert statuses == [200, 413] * 2


# ---- the staff dashboard ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def dashboard(postgres, tmp_path_factory):
    """The dashboard server on this module's database, with an admin and a staff account."""
    from bot.dashboard import auth

    url, _ = postgres
    engine = storage.engine(url)
    for (name, password), role in ((ADMIN, "admin"), (STAFF, "staff")):
        auth.create_account(engine, name, password, role)
    server = Server(url, tmp_path_factory.mktemp("dashboard") / "server.log")
    yield server, engine
    server.stop()


def dashboard_kept(engine) -> Dict[str, Any]:
    """The accounts and advisors (what a bad form must never change)."""
    a = dashboard_models.staff_accounts.c
    with engine.connect() as db:
        accounts = db.execute(sa.select(a.username, a.role, a.active, a.password_hash).order_by(a.username)).all()
        advisor_rows = db.execute(sa.text("SELECT name, channel, contact, active FROM advisors ORDER BY id")).all()
    return {"accounts": [tuple(r) for r in accounts], "advisors": [tuple(r) for r in advisor_rows]}


FORM = "application/x-www-form-urlencoded"


def dashboard_cases() -> Iterator[Tuple[str, str, str, Any, Dict[str, str], Tuple[int, ...]]]:
    """(name, method, path, body or fields ({csrf} is the session's token), headers, statuses)."""
    form = {"Content-Type": FORM}
    for name, body, headers in [("malformed form", b"%%&&==&csrf", form),
                                ("a JSON object", as_json({"csrf": "{csrf}", "username": "ada"}),
                                 {"Content-Type": "application/json"}),
                                ("a JSON array", b"[1, 2]", {"Content-Type": "application/json"}),
                                ("invalid UTF-8", b"csrf=\xff\xfe&username=\xc3", form),
                                ("a wrong Content-Type", b"csrf={csrf}&username=x", {"Content-Type": "text/plain"}),
                                ("an empty body", b"", form)]:
        for path in ("/login", "/logout", "/unanswered/1/handled", "/admin/accounts", "/admin/advisors",
                     "/admin/accounts/sam/disable", "/admin/advisors/1/disable"):
            yield f"{name} to {path}", "POST", path, body, headers, (400, 401, 403, 404)
    yield "login: a CSRF token in another script", "POST", "/login", {"csrf": "رمز", "username": "ada",
                                                                       "password": "x"}, form, (403,)
    yield "logout: a CSRF token in another script", "POST", "/logout", {"csrf": "jeton-é"}, form, (403,)
    yield "login: NUL and mixed scripts", "POST", "/login", {"csrf": "{login}", "username": "ada\x00" + MIXED,
                                                             "password": "x"}, form, (401,)
    yield "login: a password of 500 kB", "POST", "/login", {"csrf": "{login}", "username": "ada",
                                                            "password": "p" * 500_000}, form, (401,)
    yield "login: a body over 1 MB", "POST", "/login", {"csrf": "{login}", "username": "ada",
                                                        "password": "p" * MEGABYTE}, form, (413,)
    yield "login: a next with CR, LF and NUL", "POST", "/login", {
        "csrf": "{login}", "username": STAFF[0], "password": STAFF[1], "next": "/\r\nSet-Cookie: x=1\x00"}, form, (303,)
    yield "login: no password", "POST", "/login", {"csrf": "{login}", "username": "ada"}, form, (401,)
    yield "login: unknown fields", "POST", "/login", {"csrf": "{login}", "username": "nobody", "password": "nothing",
                                                      "remember": "1", "x": MIXED}, form, (401,)
    yield "login page: a strange next", "GET", "/login?next=%00%2F%2Fevil%ff" + "x" * 2000, None, {}, (200, 303)
    yield "new account: NUL in the name", "POST", "/admin/accounts", {
        "csrf": "{csrf}", "username": "ne\x00w", "password": "a long password 1", "role": "staff"}, form, (400,)
    yield "new account: mixed scripts", "POST", "/admin/accounts", {"csrf": "{csrf}", "username": MIXED,
                                                                    "password": MIXED * 2, "role": "admin\x00"},\
        form, (400,)
    yield "new account: 1 MB", "POST", "/admin/accounts", {"csrf": "{csrf}", "username": "u" * MEGABYTE,
                                                           "password": "p", "role": "staff"}, form, (400, 413)
    yield "account change: NUL in the name", "POST", "/admin/accounts/sa%00m/enable", {"csrf": "{csrf}"}, form, \
        (400, 404)
    yield "account change: an unknown change", "POST", "/admin/accounts/sam/explode", {"csrf": "{csrf}"}, form, (404,)
    yield "account change: role with NUL", "POST", "/admin/accounts/sam/role", {"csrf": "{csrf}", "role": "\x00"}, \
        form, (400,)
    yield "new advisor: NUL and mixed scripts", "POST", "/admin/advisors", {
        "csrf": "{csrf}", "name": "Am\x00al " + MIXED, "channel": "sms", "contact": "+21671000999",
        "languages": "ar"}, form, (400,)
    yield "new advisor: a contact with NUL", "POST", "/admin/advisors", {
        "csrf": "{csrf}", "name": "Amal", "channel": "telegram", "contact": "12\x0034", "languages": "ar"}, form, (400,)
    yield "new advisor: unknown channel and language", "POST", "/admin/advisors", {
        "csrf": "{csrf}", "name": "Amal", "channel": "pigeon", "contact": "x", "languages": "xx"}, form, (400,)
    yield "new advisor: no fields", "POST", "/admin/advisors", {"csrf": "{csrf}"}, form, (400,)
    yield "advisor change: a huge id", "POST", "/admin/advisors/99999999999999999999/disable", {"csrf": "{csrf}"}, \
        form, (400, 404)
    yield "question handled: a huge id", "POST", "/unanswered/99999999999999999999/handled", {"csrf": "{csrf}"}, \
        form, (400, 404)
    for path in ("/", "/questions", "/csv/overview/daily", "/csv/questions/unanswered"):
        for query in ("start=%00", "end=%ff%fe", "channel=" + "x" * 5000, "language=%D8%B9%E2%80%8F",
                      "start=2025-01-01&start=2025-01-02", "split=%00", "unknown=1", "start=99999-01-01",
                      "programme=\u202e"):
            yield f"GET {path}?{query[:30]}", "GET", f"{path}?{query}", None, {}, (400,)
    # a conversation that cannot be found (any more: retention) is a page saying so
    yield "GET a transcript with a huge id", "GET", "/handoffs/99999999999999999999/transcript", None, {}, (200, 404)
    yield "GET the context of a huge id", "GET", "/unanswered/99999999999999999999/context", None, {}, (200, 404)
    yield "GET an unknown CSV table", "GET", "/csv/overview/%00", None, {}, (404,)


DASHBOARD_CASES = list(dashboard_cases())


def test_the_dashboard_answers_bad_input_with_a_4xx_and_changes_nothing(dashboard):
    server, engine = dashboard
    advisors.add("Hana", "whatsapp", "whatsapp:+21671000200", None, ("ar",))
    before = dashboard_kept(engine)
    admin = login(server.base, ADMIN)
    token = csrf_of(admin.get(f"{server.base}/questions").text)
    failures = []
    for name, method, path, body, headers, statuses in DASHBOARD_CASES:
        client = admin if path != "/login" else requests.Session()
        login_token = csrf_of(client.get(f"{server.base}/login").text) if path == "/login" else ""
        if isinstance(body, dict):
            body = {k: v.replace("{csrf}", token).replace("{login}", login_token) for k, v in body.items()}
        elif isinstance(body, bytes):
            body = body.replace(b"{csrf}", token.encode())
        reply = client.request(method, server.base + path, data=body, headers=headers, allow_redirects=False)
        if reply.status_code not in statuses:
            failures.append((name, reply.status_code, reply.text[:80]))
        if reply.status_code == 303 and ("x=1" in reply.headers.get("set-cookie", "")
                                         or "\n" in reply.headers.get("location", "")):
            failures.append((name, 303, f"a header was injected: {dict(reply.headers)}"))
        if method == "POST" and path == "/logout" and reply.status_code == 303:  # logged out: log in again
            admin = login(server.base, ADMIN)
            token = csrf_of(admin.get(f"{server.base}/questions").text)
    assert failures == [], "\n".join(f"{name}: {status} {text!r}" for name, status, text in failures)
    assert dashboard_kept(engine) == before


# ---- the load balancer -------------------------------------------------------------------------

async def test_the_load_balancer_relays_bad_input_and_refuses_oversized_bodies(site):
    """The balancer parses nothing: each bad request gets the replica's own 4xx (two "replicas",
    one server), a body over its limit gets 413, and a request it cannot read as HTTP gets 400;
    never a 5xx."""
    balancer = LoadBalancer([site.servers["webchat"].url] * 2, check_every=60)
    runner = aiohttp.web.AppRunner(balancer.app())
    await runner.setup()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    await aiohttp.web.TCPSite(runner, "127.0.0.1", port).start()
    base = f"http://127.0.0.1:{port}"
    requests_to_send = [
        (WEBCHAT_HOOK, b"[1]", {"Content-Type": "application/json"}, 400),
        (WEBCHAT_HOOK, b'{"sender": "lb-sender-01", "message": "\xff"}', {"Content-Type": "application/json"}, 400),
        (WEBCHAT_HOOK, as_json({"sender": "lb-sender-01", "message": ""}), {"Content-Type": "application/json"}, 400),
        (WEBCHAT_HOOK, b"x" * (3 * MEGABYTE), {"Content-Type": "application/json"}, 413),
        ("/webhooks/%00/..%2f%ff", b"", {}, 404),
    ]
    try:
        answers = []
        async with aiohttp.ClientSession() as client:
            for _ in range(2):  # both replicas in turn
                for path, body, headers, _ in requests_to_send:
                    async with client.post(base + path, data=body, headers=headers) as answer:
                        answers.append(answer.status)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /webhooks/webchat/webhook HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n\x00\xff")
        await writer.drain()
        garbage = await asyncio.wait_for(reader.read(200), 5)
        writer.close()
    finally:
        await runner.cleanup()
    assert answers == [expected for *_, expected in requests_to_send] * 2
    assert garbage.split(b" ", 2)[1] == b"400", garbage

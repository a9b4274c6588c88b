"""The Twilio channel (SMS and WhatsApp), fed recorded form posts, sending to a stand-in of Twilio."""
from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path
from urllib.parse import urlencode

import pytest
from rasa.shared.core.events import BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from twilio.request_validator import RequestValidator

from bot import profiles
from bot.i18n import Renderer
from channels import delivery
from channels.sms import prefer_gsm7
from channels.twilio import (SmsOutput, TwilioConfig, TwilioInput, TwilioSender, WhatsAppChannel,
                             WhatsAppOutput, channel_of, keyword_of)
from tests.standins import ChannelServer, TwilioStandIn

FIXTURES = Path(__file__).parent / "fixtures" / "twilio"
ACCOUNT, TOKEN = "AC00000000000000000000000000000001", "0123456789abcdef0123456789abcdef"
PUBLIC = "https://bot.example.org"
HOOK, STATUS = "/webhooks/twilio/webhook", "/webhooks/twilio/status"
FROM_SMS, FROM_WA = "+21670000001", "whatsapp:+14155238886"
MESSAGES = f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
CALLBACK = f"{PUBLIC}/webhooks/twilio/status"
_fresh = itertools.count(1)


@pytest.fixture(scope="module")
def api():
    """The Twilio REST API stand-in."""
    server = TwilioStandIn(ACCOUNT, TOKEN)
    yield server
    server.close()


def config(api, **changes) -> TwilioConfig:
    settings = dict(account_sid=ACCOUNT, auth_token=TOKEN, public_url=PUBLIC, from_sms=FROM_SMS,
                    from_whatsapp=FROM_WA, api_base=api.url, whatsapp_templates={"fa": "HXfa0001", "*": "HXen0001"})
    settings.update(changes)
    return TwilioConfig(**settings)


@pytest.fixture
async def sender(api, database_url):
    """A sender to the stand-in, closed after the test."""
    made = TwilioSender(config(api))
    yield made
    await made.close()


@pytest.fixture
def twilio(api, database_url, monkeypatch):
    """The channel, talking to the stand-in, with fast retries."""
    monkeypatch.setattr(delivery, "BASE_DELAY", 0.01)
    api.clear()
    return TwilioInput(config(api))


def form(name: str, fresh: bool = False, **changes) -> dict:
    """A recorded form post (with a new MessageSid when `fresh`)."""
    data = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    if fresh:
        sid = data["MessageSid"][:2] + f"{next(_fresh):032x}"
        data.update(MessageSid=sid, SmsSid=sid, SmsMessageSid=sid)
    data.update(changes)
    return data


def signed(params: dict, path: str = HOOK, token: str = TOKEN) -> dict:
    """Headers of a request Twilio signed."""
    return {"Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": RequestValidator(token).compute_signature(PUBLIC + path, params)}


def text(language: str, key: str) -> str:
    return prefer_gsm7(Renderer(language).render(key))


# (fixture, expected status, effect, text Rasa gets, channel; replies Twilio is asked to send)
CASES = [
    ("sms_text.json", 200, "message", "Hello, I need a loan", "sms",
     [{"To": "+21650123456", "From": FROM_SMS, "Body": "ok", "StatusCallback": CALLBACK}]),
    ("whatsapp_text.json", 200, "message", "سلام، قرض می‌خواهم", "whatsapp",
     [{"To": "whatsapp:+93700123456", "From": FROM_WA, "Body": "ok", "StatusCallback": CALLBACK}]),
    ("mms_photo.json", 200, "media", None, None,
     [{"To": "+21650123456", "From": FROM_SMS, "Body": text("ar", "utter_media_received"), "StatusCallback": CALLBACK}]),
    ("whatsapp_voice.json", 200, "media", None, None,
     [{"To": "whatsapp:+93700123456", "From": FROM_WA, "Body": text("fa", "utter_media_received"),
       "StatusCallback": CALLBACK}]),
    ("sms_stop.json", 200, "stopped", None, None, []),  # Twilio's Advanced Opt-Out has answered
    ("sms_start.json", 200, "started", None, None, []),
    ("sms_help.json", 200, "help", None, None, []),
    ("sms_stop_arabic.json", 200, "stopped", None, None,
     [{"To": "+21650999888", "From": FROM_SMS, "Body": text("ar", "sms.stopped"), "StatusCallback": CALLBACK}]),
    ("whatsapp_stop_farsi.json", 200, "stopped", None, None,
     [{"To": "whatsapp:+93700123456", "From": FROM_WA, "Body": text("fa", "sms.stopped"), "StatusCallback": CALLBACK}]),
    ("whatsapp_help_urdu.json", 200, "help", None, None,
     [{"To": "whatsapp:+923001234567", "From": FROM_WA, "Body": text("ur", "sms.help"), "StatusCallback": CALLBACK}]),
]


@pytest.mark.parametrize("fixture, status, effect, rasa_text, channel, replies", CASES, ids=[c[0] for c in CASES])
async def test_recorded_form_post(twilio, api, fixture, status, effect, rasa_text, channel, replies):
    params = form(fixture, fresh=True)
    async with ChannelServer(twilio) as server:
        got_status, got_body = await server.post(HOOK, params, signed(params))
    assert got_status == status and got_body.endswith("<Response></Response>")
    messages = server.agent.messages
    if rasa_text is None:
        assert messages == []
    else:
        [message] = messages
        assert (message.text, message.sender_id, message.input_channel, message.metadata) == (
            rasa_text, params["From"], channel, None)
        assert message.output_channel.name() == channel
    assert [r.path for r in api.sent()] == [MESSAGES] * len(replies)
    assert [r.params for r in api.sent()] == replies


@pytest.mark.parametrize("fixture, opted_out", [
    ("sms_stop.json", True), ("sms_stop_arabic.json", True), ("whatsapp_stop_farsi.json", True), ("sms_start.json", False)])
async def test_stop_and_start_are_recorded_per_user(twilio, fixture, opted_out):
    params = form(fixture, fresh=True)
    profiles.remember(params["From"], "sms", opted_out=not opted_out)
    async with ChannelServer(twilio) as server:
        await server.post(HOOK, params, signed(params))
    assert profiles.get(params["From"]).opted_out is opted_out


async def test_a_word_only_twilio_knows_as_start_resumes_reminders(twilio, api):
    # Twilio's Advanced Opt-Out re-subscribes on "YES" and says so with OptOutType=START
    params = form("sms_start.json", fresh=True, Body="YES")
    profiles.remember(params["From"], "sms", opted_out=True)
    async with ChannelServer(twilio) as server:
        status, effect, _ = await post_form(server, HOOK, params, signed(params))
    assert (status, effect, profiles.get(params["From"]).opted_out) == (200, "started", False)
    assert api.sent() == [] and server.agent.messages == []  # Twilio has answered; not a chat message


@pytest.mark.parametrize("headers, status, error", [
    ({"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}, 403,
     f"missing or wrong X-Twilio-Signature for {PUBLIC}{HOOK}"),
    ({"Content-Type": "application/x-www-form-urlencoded"}, 403, f"missing or wrong X-Twilio-Signature for {PUBLIC}{HOOK}"),
    ("signed with another account's token", 403, f"missing or wrong X-Twilio-Signature for {PUBLIC}{HOOK}"),
], ids=["wrong signature", "no signature", "other token"])
async def test_a_request_not_signed_by_twilio_is_refused(twilio, api, headers, status, error):
    params = form("sms_text.json", fresh=True)
    if isinstance(headers, str):
        headers = signed(params, token="ffffffffffffffffffffffffffffffff")
    async with ChannelServer(twilio) as server:
        got = await server.post(HOOK, params, headers)
    assert (got[0], json.loads(got[1])) == (status, {"error": error})
    assert server.agent.messages == [] and api.sent() == []


async def test_a_raw_recorded_body_is_accepted_byte_for_byte(twilio):
    raw = (FIXTURES / "sms_text_raw.txt").read_bytes()
    params = form("sms_text.json")
    async with ChannelServer(twilio) as server:
        status, _ = await server.post(HOOK, raw, signed(params))
    assert status == 200 and [m.text for m in server.agent.messages] == ["Hello, I need a loan"]


async def test_bad_input_gets_a_4xx_with_a_clear_error(twilio):
    params = {k: v for k, v in form("sms_text.json", fresh=True).items() if k != "From"}
    async with ChannelServer(twilio) as server:
        missing = await server.post(HOOK, params, signed(params))
        as_json = await server.post(HOOK, json.dumps(params), {"Content-Type": "application/json"})
    assert (missing[0], json.loads(missing[1])) == (400, {"error": "MessageSid and From are required"})
    assert (as_json[0], json.loads(as_json[1])) == (400, {"error": "expected an application/x-www-form-urlencoded form"})


async def test_a_replayed_message_sid_is_processed_once(twilio, api):
    params = form("sms_text.json", fresh=True)
    async with ChannelServer(twilio) as server:
        first = await server.post(HOOK, params, signed(params))
        second = await server.post(HOOK, params, signed(params))
    assert first[0] == second[0] == 200
    assert len(server.agent.messages) == 1 and len(api.sent()) == 1


async def test_a_numbered_reply_is_the_latest_menus_button(twilio):
    params = form("sms_numbered.json", fresh=True)
    server = ChannelServer(twilio)
    server.agent.tracker_store.trackers[params["From"]] = DialogueStateTracker.from_events(params["From"], [
        UserUttered("help"),
        BotUttered("1. Loans\n2. Grants", {"buttons": [{"title": "Loans", "payload": '/help{"menu":"loans"}'},
                                                       {"title": "Grants", "payload": '/help{"menu":"grants"}'}]})])
    async with server:
        await server.post(HOOK, params, signed(params))
    assert server.agent.messages[0].text == '/help{"menu":"grants"}'


async def test_media_goes_to_the_advisor_who_holds_the_conversation(twilio, api):
    params = form("mms_photo.json", fresh=True)
    server = ChannelServer(twilio)
    server.agent.replies = []
    server.agent.tracker_store.trackers[params["From"]] = DialogueStateTracker.from_dict(
        params["From"], [{"event": "pause", "timestamp": 1.0}])
    async with server:
        await server.post(HOOK, params, signed(params))
    [message] = server.agent.messages
    assert message.metadata == {"media": [{"type": "image/jpeg", "url": params["MediaUrl0"]}]}
    assert [r.params["Body"] for r in api.sent()] == [text("ar", "utter_media_to_advisor")]


# ---- long SMS and MORE -------------------------------------------------------------------

async def test_a_long_sms_is_sent_page_by_page_on_more(twilio, api):
    sender = "+21650444555"
    server = ChannelServer(twilio)
    server.agent.replies = [{"text": "whole", "sms_pages": ["page one\nReply MORE", "page two\nReply MORE", "page three"]}]
    async with server:
        for body in ("Hello", "MORE", "more.", "MORE"):
            params = form("sms_text.json", fresh=True, From=sender, Body=body)
            await server.post(HOOK, params, signed(params))
    assert [r.params["Body"] for r in api.sent()] == [
        "page one\nReply MORE", "page two\nReply MORE", "page three", "page one\nReply MORE"]
    assert [m.text for m in server.agent.messages] == ["Hello", "MORE"]  # nothing left: MORE goes to the bot


async def test_another_message_drops_the_unread_pages(twilio, api):
    sender = "+21650444666"
    server = ChannelServer(twilio)
    server.agent.replies = [{"text": "whole", "sms_pages": ["one", "two"]}]
    async with server:
        for body in ("Hello", "something else", "MORE"):
            params = form("sms_text.json", fresh=True, From=sender, Body=body)
            await server.post(HOOK, params, signed(params))
    assert [m.text for m in server.agent.messages] == ["Hello", "something else"]
    assert [r.params["Body"] for r in api.sent()] == ["one", "one", "two"]


# ---- status callbacks --------------------------------------------------------------------

async def test_status_callbacks_are_recorded_and_never_go_backwards(twilio):
    delivered = form("status_delivered.json")
    late_sent = dict(delivered, MessageStatus="sent", SmsStatus="sent")
    failed = form("status_failed.json")
    for sent in (delivered, failed):  # as the sends recorded them
        await delivery.record_status(channel_of(sent["To"]), sent["MessageSid"], sent["To"], "queued")
    async with ChannelServer(twilio) as server:
        answers = [await server.post(STATUS, p, signed(p, STATUS)) for p in (delivered, late_sent, failed)]
    assert [a[0] for a in answers] == [204, 204, 204]
    rows = {s.message_id: s for s in delivery.statuses()}
    assert rows[delivered["MessageSid"]].status == "delivered"
    assert (rows[failed["MessageSid"]].status, rows[failed["MessageSid"]].error_code) == ("undelivered", "30003")


async def test_a_status_callback_never_stores_a_message_we_do_not_hold(twilio):
    # after forget_me the send's row is gone: a late callback must not write the number back
    unknown = form("status_delivered.json", MessageSid="SM9c00000000000000000000000000ff")
    async with ChannelServer(twilio) as server:
        status, _ = await server.post(STATUS, unknown, signed(unknown, STATUS))
    assert status == 204
    assert unknown["MessageSid"] not in {s.message_id for s in delivery.statuses()}


async def test_an_unsigned_status_callback_is_refused(twilio):
    params = form("status_delivered.json")
    async with ChannelServer(twilio) as server:
        status, _ = await server.post(STATUS, params, {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 403


# ---- sending -----------------------------------------------------------------------------

async def test_server_errors_are_retried_with_backoff(api, sender, monkeypatch):
    monkeypatch.setattr(delivery, "BASE_DELAY", 0.01)
    api.clear()
    api.fail(500, 20500, "Internal Server Error", times=2)
    await SmsOutput(sender).send_response("+21650111222", {"text": "hello"})
    assert len(api.sent()) == 3
    last = delivery.statuses("sms")[-1]
    assert (last.recipient_id, last.status, last.attempts) == ("+21650111222", "queued", 3)


async def test_an_unsubscribed_recipient_is_opted_out_and_not_retried(api, sender, caplog):
    api.clear()
    api.fail(400, 21610, "Attempt to send to unsubscribed recipient")
    profiles.remember("+21650111333", "sms", opted_out=False)
    with caplog.at_level(logging.ERROR, logger="channels.delivery"):
        await SmsOutput(sender).send_text_message("+21650111333", "hello")
    assert len(api.sent()) == 1 and profiles.get("+21650111333").opted_out is True
    last = delivery.statuses("sms")[-1]
    assert (last.status, last.error_code) == ("failed", "21610")
    assert "failed after 1 attempt(s)" in caplog.text


async def test_whatsapp_inside_the_care_window_is_free_text(twilio, api, sender):
    params = form("whatsapp_text.json", fresh=True, From="whatsapp:+93700555001")
    async with ChannelServer(twilio) as server:
        await server.post(HOOK, params, signed(params))
    api.clear()
    await WhatsAppOutput(sender).send_text_message("whatsapp:+93700555001", "Your reminder")
    assert [r.params for r in api.sent()] == [
        {"To": "whatsapp:+93700555001", "From": FROM_WA, "Body": "Your reminder", "StatusCallback": CALLBACK}]


async def test_whatsapp_outside_the_care_window_uses_the_template_of_the_users_language(api, sender):
    api.clear()
    profiles.remember("whatsapp:+93700555002", "whatsapp", language="fa")
    await WhatsAppOutput(sender).send_text_message("whatsapp:+93700555002", "یادآوری:\nقسط شما")
    assert [r.params for r in api.sent()] == [{
        "To": "whatsapp:+93700555002", "From": FROM_WA, "ContentSid": "HXfa0001",
        "ContentVariables": {"1": "یادآوری: قسط شما"}, "StatusCallback": CALLBACK}]


async def test_whatsapp_outside_the_window_without_a_template_sends_nothing(api, database_url, caplog):
    api.clear()
    with caplog.at_level(logging.ERROR, logger="channels.twilio"):
        await WhatsAppOutput(TwilioSender(config(api, whatsapp_templates={}))).send_text_message(
            "whatsapp:+93700555003", "Your reminder")  # no HTTP session is opened
    assert api.sent() == [] and "no template is configured" in caplog.text
    assert delivery.statuses("whatsapp")[-1].error_code == "no_template"


async def test_a_long_whatsapp_message_is_split_at_paragraphs(twilio, api):
    sender = "whatsapp:+93700555004"
    paragraphs = ["First paragraph." + " word" * 250, "Second paragraph." + " word" * 250]
    server = ChannelServer(twilio)
    server.agent.replies = [{"text": "\n\n".join(paragraphs)}]
    params = form("whatsapp_text.json", fresh=True, From=sender)
    async with server:
        await server.post(HOOK, params, signed(params))
    assert [r.params["Body"] for r in api.sent()] == paragraphs


# ---- keywords and configuration ----------------------------------------------------------

@pytest.mark.parametrize("message, keyword, language", [
    ("STOP", "stop", "en"),
    (" Stop! ", "stop", "fr"),
    ("arrêt", "stop", "fr"),
    ("توقف", "stop", "ar"),
    ("بند کرو", "stop", "ur"),
    ("aide", "help", "fr"),
    ("مرسته", "help", "ps"),
    ("suite", "more", "fr"),
    ("stop the reminders please", None, None),
    ("2", None, None),
])
def test_keywords_are_whole_messages_in_any_of_the_six_languages(message, keyword, language):
    found, languages = keyword_of(message)
    assert found == keyword and (language in languages if language else languages == [])
    if language:
        assert any(w in Renderer(language).gettext(f"keywords.{keyword}").split("|")
                   for w in (message.strip(" !").lower(), message.strip()))


@pytest.mark.parametrize("env, line", [
    ({}, "Twilio: TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_PUBLIC_URL not set, channel skipped"),
    ({"TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_PUBLIC_URL": PUBLIC},
     "Twilio: none of TWILIO_FROM_SMS, TWILIO_FROM_WHATSAPP, TWILIO_MESSAGING_SERVICE_SID set, channel skipped"),
])
def test_a_missing_setting_skips_the_channel_with_one_log_line(monkeypatch, caplog, env, line):
    import channels.twilio as module

    monkeypatch.setattr(module, "_logged", set())
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_PUBLIC_URL", "TWILIO_FROM_SMS",
                 "TWILIO_FROM_WHATSAPP", "TWILIO_MESSAGING_SERVICE_SID"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with caplog.at_level(logging.INFO, logger="channels.twilio"):
        sms, whatsapp = TwilioInput.from_credentials({}), WhatsAppChannel.from_credentials({})
    assert sms.config is None and whatsapp.config is None
    assert sms.get_output_channel() is None and whatsapp.get_output_channel() is None
    assert [r.getMessage() for r in caplog.records] == [line]


def test_the_templates_setting_is_read(monkeypatch):
    for name, value in {"TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_PUBLIC_URL": PUBLIC + "/",
                        "TWILIO_FROM_WHATSAPP": "+14155238886",
                        "TWILIO_WHATSAPP_TEMPLATES": "en=HXen, fr=HXfr,*=HXany"}.items():
        monkeypatch.setenv(name, value)
    settings = TwilioConfig.from_env()
    assert (settings.public_url, settings.from_whatsapp, settings.whatsapp_templates) == (
        PUBLIC, FROM_WA, {"en": "HXen", "fr": "HXfr", "*": "HXany"})
    assert WhatsAppChannel.from_credentials({}).get_output_channel().name() == "whatsapp"
    assert TwilioInput.from_credentials({}).get_output_channel().name() == "sms"


def test_the_urlencoded_fixture_matches_its_json_twin():
    raw = (FIXTURES / "sms_text_raw.txt").read_text()
    assert raw == urlencode(form("sms_text.json"))


# ---- recorded requests with their expected outcome: a wrong signature, a replay ---------------
# Each file holds what reached the webhook (headers and form, as Twilio or someone else sent
# them), the status and effect each request must get, and what must follow from them.

REQUEST_CASES = ["sms_wrong_signature.json", "sms_signed_for_another_url.json", "sms_replayed_message_sid.json"]


def recorded(name: str) -> dict:
    """A recorded request case."""
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


async def post_form(server: ChannelServer, path: str, params: dict, headers: dict) -> tuple:
    """POSTs a form to the channel; (status, the effect the channel reports, body)."""
    import aiohttp

    async with aiohttp.ClientSession() as client:
        async with client.post(server.url + path, data=params, headers=headers) as answer:
            return answer.status, answer.headers.get("X-Effect"), await answer.text()


@pytest.mark.parametrize("name", REQUEST_CASES)
def test_a_recorded_signature_is_twilios_for_what_twilio_signed(name):
    case = recorded(name)
    for request in case["requests"]:
        what_was_signed = dict(request["form"], **case["signed"]["form"])
        assert RequestValidator(TOKEN).validate(
            case["signed"]["url"], what_was_signed, request["headers"]["X-Twilio-Signature"])


@pytest.mark.parametrize("name", REQUEST_CASES)
async def test_a_recorded_request_gets_its_status_and_effect(twilio, api, name):
    case = recorded(name)
    sender = case["requests"][0]["form"]["From"]
    if case["profile"] is not None:
        profiles.remember(sender, "sms", **case["profile"])
    async with ChannelServer(twilio) as server:
        answers = [await post_form(server, r["path"], r["form"], r["headers"]) for r in case["requests"]]
    for (status, effect, got_body), request in zip(answers, case["requests"]):
        expected = request["expect"]
        assert (status, effect) == (expected["status"], expected["effect"])
        if expected["body"] is None:
            assert got_body.endswith("<Response></Response>")
        else:
            assert json.loads(got_body) == expected["body"]
    assert [m.text for m in server.agent.messages] == case["expect"]["rasa_texts"]
    assert [r.params for r in api.sent()] == case["expect"]["replies"]
    if case["expect"]["opted_out"] is not None:
        assert profiles.get(sender).opted_out is case["expect"]["opted_out"]


# ---- STOP, START and HELP in the six languages -----------------------------------------------
# (reply language, keyword, what the user writes, sender, their profile's language before).
# The reply is in the language of the word; a word several languages share (a Latin "stop",
# Farsi and Pashto "کمک") is answered in the user's language, known or their programme's.

KEYWORD_CASES = [
    ("en", "stop", "STOP", "+21650300101", "en"),
    ("fr", "stop", "Arrêt", "+21650300102", None),
    ("ar", "stop", "إيقاف", "+21650300103", None),
    ("fa", "stop", "توقف", "whatsapp:+93700300104", None),  # Arabic too: the Afghan programme speaks Farsi
    ("ps", "stop", "ودروه", "whatsapp:+93700300105", None),
    ("ur", "stop", "band karo", "+923000300106", None),
    ("ur", "stop", "Stop", "+923000300107", None),  # a Latin STOP from Pakistan
    ("en", "start", "Start", "+21650300201", "en"),
    ("fr", "start", "reprendre", "+21650300202", None),
    ("ar", "start", "ابدأ", "whatsapp:+21650300203", None),
    ("fa", "start", "شروع", "whatsapp:+93700300204", None),  # also Pashto and Urdu
    ("ps", "start", "پیل", "+93700300205", None),
    ("ur", "start", "دوبارہ شروع", "whatsapp:+923000300206", None),
    ("en", "help", "HELP", "whatsapp:+21650300301", "en"),
    ("fr", "help", "Aide !", "+21650300302", None),
    ("ar", "help", "مساعدة", "+21650300303", None),
    ("fa", "help", "راهنما", "+93700300304", None),
    ("ps", "help", "کمک", "whatsapp:+93700300305", "ps"),  # Farsi too: the user reads Pashto
    ("ur", "help", "madad", "+923000300306", None),
    # Twilio's own opt-out words reach every language, answered in the user's
    ("en", "stop", "CANCEL", "whatsapp:+21650300108", "en"),
    ("fr", "stop", "cancel", "+21650300109", "fr"),
    ("ar", "stop", "إلغاء", "+21650300110", None),
    ("fa", "stop", "لغو", "whatsapp:+93700300111", "fa"),
]
REPLY_KEYS = {"stop": "sms.stopped", "start": "sms.started", "help": "sms.help"}
EFFECTS = {"stop": "stopped", "start": "started", "help": "help"}


def test_the_keyword_cases_cover_each_keyword_in_the_six_languages():
    covered = {(keyword, language) for language, keyword, *_ in KEYWORD_CASES}
    assert covered == {(k, lang) for k in REPLY_KEYS for lang in ("en", "fr", "ar", "fa", "ps", "ur")}
    for key in REPLY_KEYS.values():  # a reply in the wrong language cannot pass for the right one
        assert len({text(language, key) for language in ("en", "fr", "ar", "fa", "ps", "ur")}) == 6


@pytest.mark.parametrize("language, keyword, body, sender, known_language", KEYWORD_CASES,
                         ids=[f"{c[1]}-{c[0]}-{c[2]}" for c in KEYWORD_CASES])
async def test_a_keyword_is_recorded_and_answered_in_the_users_language(twilio, api, language, keyword, body,
                                                                        sender, known_language):
    opted_out_before = keyword != "stop"  # START and HELP come from someone who had stopped
    is_whatsapp = sender.startswith("whatsapp:")
    profiles.remember(sender, "unknown", opted_out=opted_out_before, language=known_language)
    params = form("whatsapp_text.json" if is_whatsapp else "sms_text.json", fresh=True, From=sender, Body=body)
    async with ChannelServer(twilio) as server:
        status, effect, _ = await post_form(server, HOOK, params, signed(params))
    assert (status, effect) == (200, EFFECTS[keyword])
    assert server.agent.messages == []  # a keyword is the channel's business, not the assistant's
    profile = profiles.get(sender)
    assert profile.opted_out is {"stop": True, "start": False, "help": opted_out_before}[keyword]
    assert profile.channel == ("unknown" if keyword == "help" else "whatsapp" if is_whatsapp else "sms")
    assert [r.params for r in api.sent()] == [{"To": sender, "From": FROM_WA if is_whatsapp else FROM_SMS,
                                               "Body": text(language, REPLY_KEYS[keyword]), "StatusCallback": CALLBACK}]


# ---- the delivery lease: a replica killed mid-message, another replica at work ----------------
# Twilio retries (with the connection overrides `#rc=..&rp=5xx`) within its 15 s, right after the
# load balancer's 502: the redelivery waits out one lease instead of being dropped.

def claim_as_another_replica(channel: str, sid: str, sender: str) -> None:
    """The claim another replica has just taken and not finished."""
    import sqlalchemy as sa

    from bot import storage
    from bot.channel_store import ChannelDelivery

    with storage.engine().begin() as db:
        db.execute(sa.insert(ChannelDelivery.__table__).values(
            channel=channel, delivery_id=sid, sender_id=sender, received_at=storage.utcnow(),
            state="processing", claimed_at=storage.utcnow()))


def set_claim(channel: str, sid: str, **values) -> None:
    """What the other replica does to its claim: renew it, or mark it done."""
    import sqlalchemy as sa

    from bot import storage
    from bot.channel_store import ChannelDelivery

    with storage.engine().begin() as db:
        db.execute(sa.update(ChannelDelivery.__table__).where(
            ChannelDelivery.channel == channel, ChannelDelivery.delivery_id == sid).values(**values))


async def post_timed(server: ChannelServer, params: dict) -> tuple:
    """(status, X-Effect, seconds the answer took)."""
    import time

    started = time.monotonic()
    status, effect, _ = await post_form(server, HOOK, params, signed(params))
    return status, effect, time.monotonic() - started


async def test_a_redelivery_waits_out_the_lease_of_a_killed_replica_and_is_processed(twilio, api, monkeypatch):
    monkeypatch.setattr(delivery, "LEASE_SECONDS", 0.8)
    params = form("sms_text.json", fresh=True)
    claim_as_another_replica("sms", params["MessageSid"], params["From"])  # then killed: never renewed
    async with ChannelServer(twilio) as server:
        status, effect, took = await post_timed(server, params)
        again = await post_timed(server, params)
    assert (status, effect) == (200, "message") and 0.7 < took < 5
    assert again[:2] == (200, "duplicate")
    assert [m.text for m in server.agent.messages] == ["Hello, I need a loan"] and len(api.sent()) == 1


async def test_a_redelivery_while_a_live_replica_works_is_not_processed_twice(twilio, api, monkeypatch):
    import asyncio

    from bot import storage

    monkeypatch.setattr(delivery, "LEASE_SECONDS", 0.6)
    working, finishing = form("sms_text.json", fresh=True), form("sms_text.json", fresh=True)
    for params in (working, finishing):
        claim_as_another_replica("sms", params["MessageSid"], params["From"])

    async def live_replica() -> None:  # renews its lease as it works; finishes the second message
        for beat in range(100):
            await asyncio.sleep(0.15)
            await asyncio.to_thread(set_claim, "sms", working["MessageSid"], claimed_at=storage.utcnow())
            if beat == 2:
                await asyncio.to_thread(set_claim, "sms", finishing["MessageSid"], state="done")

    replica = asyncio.ensure_future(live_replica())
    try:
        async with ChannelServer(twilio) as server:
            in_progress = await post_timed(server, working)
            finished = await post_timed(server, finishing)
    finally:
        replica.cancel()
    assert in_progress[:2] == (200, "in_progress") and in_progress[2] > 0.6  # waited one lease
    assert finished[:2] == (200, "duplicate")
    assert server.agent.messages == [] and api.sent() == []

"""End to end: the real Rasa server and action server, reached through the Telegram webhook and
the Twilio webhook as the services call them, answering through local stand-ins of their APIs."""
from __future__ import annotations

import html
import json
import re
import urllib.request
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from bot.i18n import Renderer
from channels.sms import MAX_SEGMENTS, prefer_gsm7, segments
from tests.conftest import ROOT, start_rasa_server
from tests.standins import TelegramStandIn, TwilioStandIn

TOKEN, SECRET = "7000000001:AAH-e2e_token_0123456789abcdefghijk", "e2e-secret"
ACCOUNT, AUTH = "AC000000000000000000000000000000e2", "e2e0000000000000000000000000auth"
PUBLIC = "https://returnee.example.org"
FROM_SMS, FROM_WA = "+21670000001", "whatsapp:+14155238886"
ARABIC = re.compile("[\u0600-\u06ff]")


@pytest.fixture(scope="module")
def stand_ins():
    """The Bot API and Twilio stand-ins the server talks to."""
    telegram, twilio = TelegramStandIn(TOKEN), TwilioStandIn(ACCOUNT, AUTH)
    yield telegram, twilio
    telegram.close()
    twilio.close()


def channel_settings(telegram: TelegramStandIn, twilio: TwilioStandIn) -> dict:
    """The Telegram and Twilio settings of a server that talks to the stand-ins."""
    return {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_WEBHOOK_SECRET": SECRET, "TELEGRAM_MODE": "webhook",
            "TELEGRAM_API_BASE": telegram.url, "TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": AUTH,
            "TWILIO_PUBLIC_URL": PUBLIC, "TWILIO_FROM_SMS": FROM_SMS, "TWILIO_FROM_WHATSAPP": FROM_WA,
            "TWILIO_API_BASE": twilio.url}


@pytest.fixture(scope="module")
def server(tmp_path_factory, action_server, database_url, stand_ins):
    """`rasa run` with bot/credentials.yml and the channels' settings pointing at the stand-ins."""
    telegram, twilio = stand_ins
    tmp = tmp_path_factory.mktemp("channels_e2e")
    env = dict(channel_settings(telegram, twilio),
               TWILIO_WHATSAPP_TEMPLATES="fa=HXfa00000000000000000000000000e2,*=HXany0000000000000000000000000e2")
    running = start_rasa_server(tmp, action_server, tmp / "tracker.db", database_url,
                                credentials=ROOT / "bot" / "credentials.yml", env_extra=env)
    yield running
    running.stop()


def post(url: str, body: bytes, headers: dict) -> tuple:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            return answer.status, answer.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8")


_update_ids = iter(range(830000000, 830100000))


def telegram_update(server, user_id: int, language: str, text: str = None, data: str = None) -> tuple:
    """Posts a Telegram update (a text message, or a button press when `data` is given)."""
    user = {"id": user_id, "is_bot": False, "first_name": "Test", "language_code": language}
    chat = {"id": user_id, "first_name": "Test", "type": "private"}
    update = {"update_id": next(_update_ids)}
    if data is None:
        update["message"] = {"message_id": 1, "from": user, "chat": chat, "date": 1763730000, "text": text}
    else:
        update["callback_query"] = {"id": f"cb{update['update_id']}", "from": user, "chat_instance": "1", "data": data,
                                    "message": {"message_id": 2, "chat": chat, "date": 1763730000, "text": "menu"}}
    return post(f"{server.url}/webhooks/telegram/webhook", json.dumps(update).encode(),
                {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": SECRET})


_sids = iter(range(1, 100000))


def twilio_message(server, sender: str, body: str) -> tuple:
    """Posts a message the way Twilio does: a signed form."""
    sid = f"SMe2{next(_sids):030x}"
    to = FROM_WA if sender.startswith("whatsapp:") else FROM_SMS
    params = {"MessageSid": sid, "SmsSid": sid, "SmsMessageSid": sid, "AccountSid": ACCOUNT, "From": sender,
              "To": to, "Body": body, "NumMedia": "0", "NumSegments": "1", "SmsStatus": "received",
              "ApiVersion": "2010-04-01"}
    signature = RequestValidator(AUTH).compute_signature(f"{PUBLIC}/webhooks/twilio/webhook", params)
    return post(f"{server.url}/webhooks/twilio/webhook", urlencode(params).encode(),
                {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature})


def catalog_texts(language: str) -> set:
    """Every response of the catalog of `language`, as its first words (variables vary)."""
    from bot.i18n import translations

    texts = set()
    for key in translations(language)._catalog:
        key = key if isinstance(key, str) else key[0]
        if key.startswith("utter_"):
            texts.add(Renderer(language).gettext(key).split("{")[0][:25])
    return {t for t in texts if len(t) >= 6}


def in_language(text: str, language: str) -> bool:
    """Whether `text` starts like one of the catalog responses of `language`."""
    return any(text.startswith(start) or start in text for start in catalog_texts(language))


def test_telegram_in_french_replies_in_french_with_a_typing_action(server, stand_ins):
    telegram, _ = stand_ins
    telegram.clear()
    status, body = telegram_update(server, 5552000001, "fr", text="Bonjour")
    assert (status, json.loads(body)) == (200, {"status": "message"})
    sent = telegram.sent("sendMessage")
    assert sent and all(s.params["chat_id"] == "5552000001" and s.params["parse_mode"] == "HTML" for s in sent)
    assert in_language(html.unescape(sent[0].params["text"]), "fr")
    assert telegram.sent()[0].name == "sendChatAction"


def test_telegram_button_press_is_answered_and_understood(server, stand_ins):
    telegram, _ = stand_ins
    telegram.clear()
    status, _ = telegram_update(server, 5552000001, "fr", data='/help{"menu":"loans"}')
    assert status == 200
    assert [r.params["callback_query_id"] for r in telegram.sent("answerCallbackQuery")] == [
        f"cb{next(_update_ids) - 1}"]
    [reply] = telegram.sent("sendMessage")
    keyboard = reply.params["reply_markup"]["inline_keyboard"]
    assert html.unescape(reply.params["text"]) == Renderer("fr").render("utter_menu_loans")
    assert keyboard[0][0]["text"] == Renderer("fr").render("topic.loan_eligibility")


def test_sms_in_arabic_replies_in_arabic_within_the_segment_budget(server, stand_ins):
    _, twilio = stand_ins
    twilio.clear()
    status, body = twilio_message(server, "+21650200001", "السلام عليكم، أريد قرضا لمشروعي")
    assert status == 200 and body.endswith("<Response></Response>")
    sent = twilio.sent("Messages.json")
    assert sent and all(s.params["From"] == FROM_SMS and s.params["To"] == "+21650200001" for s in sent)
    assert ARABIC.search(sent[0].params["Body"]) and in_language(sent[0].params["Body"], "ar")
    assert all(segments(s.params["Body"]) <= MAX_SEGMENTS for s in sent)


def test_sms_numbered_reply_chooses_from_the_menu(server, stand_ins):
    _, twilio = stand_ins
    twilio_message(server, "+21650200002", "Bonjour, je voudrais un prêt pour mon projet")
    twilio.clear()
    twilio_message(server, "+21650200002", "/help")  # the main menu, as a numbered list
    [menu] = twilio.sent("Messages.json")
    fr = Renderer("fr")
    assert prefer_gsm7(f"1. {fr.render('btn.loans')}") in menu.params["Body"]
    assert menu.params["Body"].endswith(prefer_gsm7(fr.render("menu.reply_hint")))
    twilio.clear()
    twilio_message(server, "+21650200002", "1")
    [loans] = twilio.sent("Messages.json")
    assert loans.params["Body"].startswith(prefer_gsm7(fr.render("utter_menu_loans")))


def test_whatsapp_in_farsi_replies_on_whatsapp_in_farsi(server, stand_ins):
    _, twilio = stand_ins
    twilio.clear()
    status, _ = twilio_message(server, "whatsapp:+93700200001", "سلام، من برای کار خودم قرض می‌خواهم")
    assert status == 200
    sent = twilio.sent("Messages.json")
    assert sent and all(s.params["From"] == FROM_WA and s.params["To"] == "whatsapp:+93700200001" for s in sent)
    assert ARABIC.search(sent[0].params["Body"]) and in_language(sent[0].params["Body"], "fa")


def test_a_replayed_delivery_is_answered_once(server, stand_ins):
    telegram, _ = stand_ins
    telegram.clear()
    update = {"update_id": next(_update_ids), "message": {
        "message_id": 9, "date": 1763730000, "text": "Hello",
        "from": {"id": 5552000009, "is_bot": False, "first_name": "T", "language_code": "en"},
        "chat": {"id": 5552000009, "type": "private", "first_name": "T"}}}
    headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": SECRET}
    first = post(f"{server.url}/webhooks/telegram/webhook", json.dumps(update).encode(), headers)
    count = len(telegram.sent("sendMessage"))
    second = post(f"{server.url}/webhooks/telegram/webhook", json.dumps(update).encode(), headers)
    assert json.loads(first[1]) == {"status": "message"} and json.loads(second[1]) == {"status": "duplicate"}
    assert count >= 1 and len(telegram.sent("sendMessage")) == count


def test_rasa_api_reaches_sms_and_whatsapp_users_through_the_channels(server, stand_ins):
    """What the reminder worker does: trigger an intent, the reply goes out on the user's channel."""
    _, twilio = stand_ins
    twilio_message(server, "+21650200003", "Hello, I would like a loan for my shop")
    twilio.clear()
    url = f"{server.url}/conversations/+21650200003/trigger_intent?output_channel=latest&token={server.token}"
    status, _ = post(url, json.dumps({"name": "greet"}).encode(), {"Content-Type": "application/json"})
    assert status == 200
    assert [s.params["To"] for s in twilio.sent("Messages.json")][:1] == ["+21650200003"]
    twilio.clear()
    url = (f"{server.url}/conversations/whatsapp:+93700200099/trigger_intent?output_channel=whatsapp"
           f"&token={server.token}")  # Rasa's API does not unquote the conversation id
    status, _ = post(url, json.dumps({"name": "greet"}).encode(), {"Content-Type": "application/json"})
    assert status == 200
    sent = twilio.sent("Messages.json")  # never wrote to us: outside the 24-hour window, a template
    variable = sent[0].params["ContentVariables"]["1"]
    farsi = in_language(variable, "fa")
    assert sent[0].params["ContentSid"] == ("HXfa00000000000000000000000000e2" if farsi else
                                           "HXany0000000000000000000000000e2")
    assert "Body" not in sent[0].params and "\n" not in variable


def test_bad_requests_get_4xx_from_the_real_server(server):
    assert post(f"{server.url}/webhooks/telegram/webhook", b"{}", {"Content-Type": "application/json"})[0] == 403
    assert post(f"{server.url}/webhooks/telegram/webhook", b"not json",
                {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": SECRET})[0] == 400
    assert post(f"{server.url}/webhooks/twilio/webhook", b"Body=hi&From=%2B21650200004&MessageSid=SMx",
                {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "AAAA"})[0] == 403

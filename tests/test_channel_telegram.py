"""The Telegram channel, fed recorded updates, sending to a local stand-in of the Bot API."""
from __future__ import annotations

import asyncio
import html
import itertools
import json
import logging
from pathlib import Path

import pytest
from rasa.shared.core.events import BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot import profiles
from bot.i18n import Renderer
from channels import delivery
from channels.telegram import TelegramConfig, TelegramInput, TelegramOutput, make_bot
from tests.standins import ChannelServer, FakeAgent, TelegramStandIn

FIXTURES = Path(__file__).parent / "fixtures" / "telegram"
TOKEN = "7000000001:AAH-test_token_0123456789abcdefghijk"
SECRET = "s3cret-Token_for-tests"
HOOK = "/webhooks/telegram/webhook"
AMINA = "5551234001"
GROUP = "-1009296980532"


@pytest.fixture(scope="module")
def api():
    """The Bot API stand-in."""
    server = TelegramStandIn(TOKEN)
    yield server
    server.close()


@pytest.fixture
def telegram(api, database_url, monkeypatch):
    """A webhook-mode channel talking to the stand-in, with fast retries."""
    monkeypatch.setattr(delivery, "BASE_DELAY", 0.01)
    api.clear()
    return TelegramInput(TelegramConfig(TOKEN, "webhook", SECRET, api.url))


def body(name: str) -> bytes:
    """A recorded payload, byte for byte."""
    return (FIXTURES / name).read_bytes()


_fresh = itertools.count(820000000)


def with_id(name: str) -> bytes:
    """A recorded update under a new update_id (each test gets fresh deliveries)."""
    data = json.loads(body(name))
    data["update_id"] = next(_fresh)
    return json.dumps(data).encode()


def headers(secret: str = SECRET) -> dict:
    return {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": secret}


def fr(key: str) -> str:
    return html.escape(Renderer("fr").render(key), quote=False)


# (fixture, expected status, expected effect, text Rasa gets, metadata Rasa gets)
CASES = [
    ("text.json", 200, "message", "Bonjour, je voudrais un prêt", {"language_hint": "fr"}),
    ("start.json", 200, "message", "/greet", {"language_hint": "fr"}),
    ("start_deeplink.json", 200, "message", "/greet", {"language_hint": "ar", "deep_link": "ar"}),
    ("callback_query.json", 200, "callback", '/help{"menu":"loans"}', {"language_hint": "fr"}),
    ("edited_message.json", 200, "edited", "je voudrais 5000 dinars", {"language_hint": "fr", "edited": True}),
    ("photo_caption.json", 200, "message", "Est-ce que cette carte suffit ?", {"language_hint": "fr"}),
    ("voice.json", 200, "media", None, None),
    ("photo.json", 200, "media", None, None),
    ("document.json", 200, "media", None, None),
    ("sticker.json", 200, "media", None, None),
    ("location.json", 200, "media", None, None),
    ("group_mention.json", 200, "group_redirect", None, None),
    ("group_chatter.json", 200, "ignored", None, None),
    ("channel_post.json", 200, "ignored", None, None),
    ("poll_answer.json", 200, "ignored", None, None),
    ("blocked.json", 200, "opted_out", None, None),
]


@pytest.mark.parametrize("fixture, status, effect, text, metadata", CASES, ids=[c[0] for c in CASES])
async def test_recorded_update(telegram, api, fixture, status, effect, text, metadata):
    async with ChannelServer(telegram) as server:
        got_status, got_body = await server.post(HOOK, body(fixture), headers())
    assert (got_status, json.loads(got_body)) == (status, {"status": effect})
    messages = server.agent.messages
    if text is None:
        assert messages == []
        return
    [message] = messages
    assert (message.text, message.metadata, message.sender_id, message.input_channel) == (
        text, metadata, AMINA, "telegram")
    assert message.output_channel.name() == "telegram"
    assert [r.name for r in api.sent() if r.name != "answerCallbackQuery"] == ["sendChatAction", "sendMessage"]
    assert api.sent("sendChatAction")[0].params == {"chat_id": AMINA, "action": "typing"}
    assert api.sent("sendMessage")[0].params == {"chat_id": AMINA, "text": "ok", "parse_mode": "HTML"}


async def test_a_button_press_is_answered_so_the_spinner_stops(telegram, api):
    async with ChannelServer(telegram) as server:
        await server.post(HOOK, with_id("callback_query.json"), headers())
    pressed = json.loads(body("callback_query.json"))["callback_query"]["id"]
    assert [r.params for r in api.sent("answerCallbackQuery")] == [{"callback_query_id": pressed}]


@pytest.mark.parametrize("fixture", ["voice.json", "photo.json", "document.json", "sticker.json", "location.json"])
async def test_media_gets_a_kind_reply_in_the_users_language(telegram, api, fixture):
    async with ChannelServer(telegram) as server:
        await server.post(HOOK, with_id(fixture), headers())
    assert [r.params for r in api.sent()] == [
        {"chat_id": AMINA, "text": fr("utter_media_received"), "parse_mode": "HTML"}]


async def test_media_goes_to_the_advisor_who_holds_the_conversation(telegram, api):
    server = ChannelServer(telegram)
    server.agent.replies = []  # Rasa answers nothing in a paused conversation
    server.agent.tracker_store.trackers[AMINA] = DialogueStateTracker.from_dict(
        AMINA, [{"event": "pause", "timestamp": 1.0}])
    async with server:
        await server.post(HOOK, with_id("voice.json"), headers())
    [message] = server.agent.messages
    recorded = json.loads(body("voice.json"))["message"]["voice"]["file_id"]
    assert message.metadata["media"] == {"type": "voice", "file_id": recorded}
    assert [r.params["text"] for r in api.sent("sendMessage")] == [fr("utter_media_to_advisor")]


async def test_a_group_gets_an_invitation_to_a_private_chat(telegram, api):
    async with ChannelServer(telegram) as server:
        await server.post(HOOK, with_id("group_mention.json"), headers())
    [sent] = api.sent("sendMessage")
    ar = Renderer("ar")
    assert sent.params == {
        "chat_id": GROUP, "parse_mode": "HTML", "text": ar.render("telegram.group_private"),
        "reply_markup": {"inline_keyboard": [[{"text": ar.render("btn.private_chat"),
                                               "url": "https://t.me/returnee_test_bot?start=group"}]]}}
    assert server.agent.messages == []


async def test_blocking_the_bot_opts_the_user_out(telegram):
    profiles.remember("5551234999", "telegram", opted_out=False)
    data = json.loads(body("blocked.json"))
    data["update_id"], data["my_chat_member"]["chat"]["id"] = next(_fresh), 5551234999
    async with ChannelServer(telegram) as server:
        await server.post(HOOK, json.dumps(data).encode(), headers())
    assert profiles.get("5551234999").opted_out is True


@pytest.mark.parametrize("payload, secret, status, error", [
    (body("text.json"), None, 403, "missing or wrong X-Telegram-Bot-Api-Secret-Token"),
    (body("text.json"), "wrong-secret", 403, "missing or wrong X-Telegram-Bot-Api-Secret-Token"),
    (body("invalid.txt"), SECRET, 400, "the body is not JSON"),
    (body("no_update_id.json"), SECRET, 400, "not a Telegram update: no integer update_id"),
    (b"[1, 2]", SECRET, 400, "not a Telegram update: no integer update_id"),
    (b'{"update_id": 820000004, "message": {"message_id": "x"}}', SECRET, 400, "not a Telegram update"),
], ids=["missing secret", "wrong secret", "invalid JSON", "no update_id", "a list", "malformed message"])
async def test_bad_requests_are_refused_with_a_clear_error(telegram, api, payload, secret, status, error):
    sent_headers = headers(secret) if secret else {"Content-Type": "application/json"}
    async with ChannelServer(telegram) as server:
        got_status, got_body = await server.post(HOOK, payload, sent_headers)
    assert (got_status, json.loads(got_body)) == (status, {"error": error})
    assert server.agent.messages == [] and api.sent() == []


async def test_a_replayed_update_is_processed_once(telegram, api):
    payload = with_id("text.json")
    async with ChannelServer(telegram) as server:
        first = await server.post(HOOK, payload, headers())
        second = await server.post(HOOK, payload, headers())
    assert [json.loads(first[1]), json.loads(second[1])] == [{"status": "message"}, {"status": "duplicate"}]
    assert len(server.agent.messages) == 1 and len(api.sent("sendMessage")) == 1


async def test_a_numbered_reply_is_the_latest_menus_button(telegram):
    server = ChannelServer(telegram)
    server.agent.tracker_store.trackers[AMINA] = DialogueStateTracker.from_events(AMINA, [
        UserUttered("menu"),
        BotUttered("Menu", {"buttons": [{"title": "Prêts", "payload": "/loans"},
                                        {"title": "Aides", "payload": "/grants"}]})])
    async with server:
        await server.post(HOOK, with_id("numbered_reply.json"), headers())
    assert server.agent.messages[0].text == "/grants"


# ---- what the output sends ---------------------------------------------------------------

async def test_text_is_escaped_for_html_and_buttons_become_an_inline_keyboard(api, database_url):
    api.clear()
    long_payload = '/faq{"faq_topic":"loan_interest_free","products":"all of them, please"}'
    output = TelegramOutput(make_bot(TelegramConfig(TOKEN, "webhook", SECRET, api.url)))
    await output.send_response(AMINA, {"text": "5 < 6 & <b>bold</b>?", "buttons": [
        {"title": "Prêts", "payload": "/loans"}, {"title": "Sans intérêt", "payload": long_payload}]})
    [sent] = api.sent("sendMessage")
    assert sent.params == {
        "chat_id": AMINA, "text": "5 &lt; 6 &amp; &lt;b&gt;bold&lt;/b&gt;?", "parse_mode": "HTML",
        "reply_markup": {"inline_keyboard": [[{"text": "Prêts", "callback_data": "/loans"}],
                                             [{"text": "Sans intérêt", "callback_data": "#2"}]]}}


async def test_a_long_reply_is_split_at_paragraphs_with_buttons_on_the_last_part(api, database_url):
    api.clear()
    paragraphs = [f"Paragraph {i}." + " word" * 300 for i in range(4)]  # about 1,500 characters each
    output = TelegramOutput(make_bot(TelegramConfig(TOKEN, "webhook", SECRET, api.url)))
    await output.send_text_with_buttons(AMINA, "\n\n".join(paragraphs), [{"title": "OK", "payload": "/affirm"}])
    sent = api.sent("sendMessage")
    assert [s.params["text"] for s in sent] == ["\n\n".join(paragraphs[:2]), "\n\n".join(paragraphs[2:])]
    assert all(len(s.params["text"]) <= 4096 for s in sent)
    assert "reply_markup" not in sent[0].params and sent[1].params["reply_markup"]["inline_keyboard"]


async def test_a_blocked_bot_opts_the_user_out_and_records_the_failure(api, database_url):
    api.clear()
    api.fail("sendMessage", 403, "Forbidden: bot was blocked by the user", chat_id="5551234777")
    profiles.remember("5551234777", "telegram", opted_out=False)
    output = TelegramOutput(make_bot(TelegramConfig(TOKEN, "webhook", SECRET, api.url)))
    await output.send_text_message("5551234777", "Your repayment is due")
    assert profiles.get("5551234777").opted_out is True
    assert len(api.sent("sendMessage")) == 1  # a 403 is not retried
    last = delivery.statuses("telegram")[-1]
    assert (last.recipient_id, last.status, last.error_code) == ("5551234777", "failed", "Forbidden")


async def test_flood_control_and_server_errors_are_retried(api, database_url, monkeypatch):
    monkeypatch.setattr(delivery, "BASE_DELAY", 0.01)
    api.clear()
    api.fail("sendMessage", 429, "Too Many Requests: retry after 0", retry_after=0)
    api.fail("sendMessage", 500, "Internal Server Error")
    output = TelegramOutput(make_bot(TelegramConfig(TOKEN, "webhook", SECRET, api.url)))
    await output.send_text_message(AMINA, "hello")
    assert len(api.sent("sendMessage")) == 3
    last = delivery.statuses("telegram")[-1]
    assert (last.status, last.attempts) == ("sent", 3)


async def test_a_send_that_keeps_failing_is_logged_not_raised(api, database_url, monkeypatch, caplog):
    monkeypatch.setattr(delivery, "BASE_DELAY", 0.01)
    api.clear()
    api.fail("sendMessage", 502, "Bad Gateway", times=5)
    output = TelegramOutput(make_bot(TelegramConfig(TOKEN, "webhook", SECRET, api.url)))
    with caplog.at_level(logging.ERROR, logger="channels.delivery"):
        await output.send_text_message(AMINA, "hello")
    assert len(api.sent("sendMessage")) == delivery.ATTEMPTS
    assert "failed after 3 attempt(s)" in caplog.text


# ---- configuration and polling -----------------------------------------------------------

@pytest.mark.parametrize("env, mode, line", [
    ({}, None, "Telegram: TELEGRAM_BOT_TOKEN not set, channel skipped"),
    ({"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_MODE": "webhook"}, None,
     "Telegram: webhook mode needs TELEGRAM_WEBHOOK_SECRET, not set; channel skipped"),
    ({"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_MODE": "push"}, None,
     "Telegram: TELEGRAM_MODE must be webhook or polling, not 'push'; channel skipped"),
    ({"TELEGRAM_BOT_TOKEN": TOKEN}, "polling", "Telegram: long-polling mode (no public URL needed)"),
    ({"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_WEBHOOK_SECRET": SECRET}, "webhook",
     "Telegram: webhook mode, updates at /webhooks/telegram/webhook"),
])
def test_the_configuration_picks_the_mode_with_one_log_line(monkeypatch, caplog, env, mode, line):
    for name in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET", "TELEGRAM_MODE", "TELEGRAM_API_BASE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with caplog.at_level(logging.INFO, logger="channels.telegram"):
        channel = TelegramInput.from_credentials({})
    assert (channel.config.mode if channel.config else None) == mode
    assert [r.getMessage() for r in caplog.records] == [line]


async def test_a_skipped_channel_serves_nothing(database_url):
    async with ChannelServer(TelegramInput(None)) as server:
        status, _ = await server.post(HOOK, body("text.json"), headers())
    assert status == 404


async def test_polling_mode_fetches_and_processes_updates(api, database_url):
    api.clear()
    update = json.loads(body("text.json"))
    update["update_id"] = next(_fresh)
    api.updates.append(update)
    channel = TelegramInput(TelegramConfig(TOKEN, "polling", None, api.url))
    async with ChannelServer(channel) as server:
        api.wait_for("sendMessage", 1)
        for _ in range(100):
            if server.agent.messages:
                break
            await asyncio.sleep(0.05)
    assert [m.text for m in server.agent.messages] == ["Bonjour, je voudrais un prêt"]
    names = [r.name for r in api.sent()]
    assert names[0] == "deleteWebhook" and "getUpdates" in names
    assert api.sent("getUpdates")[0].params["allowed_updates"] == [
        "message", "edited_message", "callback_query", "my_chat_member"]


# ---- the delivery lease: a replica killed mid-update, another replica at work ---------------

def claim_as_another_replica(update_id: int, seconds_ago: float) -> None:
    """The claim another replica took `seconds_ago` and has not finished (nor renewed since)."""
    import datetime as dt

    import sqlalchemy as sa

    from bot import storage
    from bot.channel_store import ChannelDelivery

    moment = storage.utcnow() - dt.timedelta(seconds=seconds_ago)
    with storage.engine().begin() as db:
        db.execute(sa.insert(ChannelDelivery.__table__).values(
            channel="telegram", delivery_id=str(update_id), sender_id=AMINA, received_at=moment,
            state="processing", claimed_at=moment))


def claim_state(update_id: int):
    """The state of the claim of an update, or None."""
    import sqlalchemy as sa

    from bot import storage
    from bot.channel_store import ChannelDelivery

    with storage.engine().connect() as db:
        return db.execute(sa.select(ChannelDelivery.state).where(
            ChannelDelivery.channel == "telegram", ChannelDelivery.delivery_id == str(update_id))).scalar()


async def post_update(server: ChannelServer, payload: bytes) -> tuple:
    """(status, JSON body, Retry-After header)."""
    import aiohttp

    async with aiohttp.ClientSession() as client:
        async with client.post(server.url + HOOK, data=payload, headers=headers()) as answer:
            return answer.status, json.loads(await answer.text()), answer.headers.get("Retry-After")


async def test_an_update_another_replica_holds_gets_503_and_is_processed_after_its_lease(telegram, api, monkeypatch):
    monkeypatch.setattr(delivery, "LEASE_SECONDS", 0.6)
    payload = with_id("text.json")
    update_id = json.loads(payload)["update_id"]
    claim_as_another_replica(update_id, 0)
    async with ChannelServer(telegram) as server:
        busy = await post_update(server, payload)  # Telegram retries any non-2xx
        assert server.agent.messages == [] and api.sent("sendMessage") == []
        await asyncio.sleep(0.7)  # that replica died: nobody renews its lease
        retried = await post_update(server, payload)
        again = await post_update(server, payload)
    assert busy == (503, {"error": "the update could not be processed; retry later"}, "1")
    assert (retried[:2], again[:2]) == ((200, {"status": "message"}), (200, {"status": "duplicate"}))
    assert len(server.agent.messages) == 1 and len(api.sent("sendMessage")) == 1
    assert claim_state(update_id) == "done"


async def test_a_failed_update_is_released_for_telegrams_retry(telegram, api):
    payload = with_id("text.json")
    update_id = json.loads(payload)["update_id"]
    agent = FakeAgent()
    handle = agent.handle_message
    failures = [RuntimeError("the action server is restarting")]

    async def fails_once(message):
        if failures:
            raise failures.pop()
        await handle(message)

    agent.handle_message = fails_once
    async with ChannelServer(telegram, agent) as running:
        failed = await post_update(running, payload)
        assert claim_state(update_id) is None  # released: the retry is processed at once
        retried = await post_update(running, payload)
    assert failed[0] == 503 and failed[2] is not None and retried[:2] == (200, {"status": "message"})
    assert claim_state(update_id) == "done" and len(api.sent("sendMessage")) == 1

"""A user who opts out (SMS STOP, a blocked Telegram bot) gets no more reminders: the pending ones
are cancelled and the worker sends none, even one it had already claimed."""
import datetime as dt
import json
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from twilio.request_validator import RequestValidator

from bot import profiles, reminders
from bot.programme import load_all
from bot.reminder_worker import Worker
from channels import delivery
from channels.telegram import TelegramConfig, TelegramInput, TelegramOutput, make_bot
from channels.twilio import TwilioConfig, TwilioInput
from tests.standins import ChannelServer, TelegramStandIn, TwilioStandIn
from tests.test_reminders_worker import LATER, RasaStandIn

FIXTURES = Path(__file__).parent / "fixtures"
ACCOUNT, TOKEN = "AC00000000000000000000000000000001", "0123456789abcdef0123456789abcdef"
PUBLIC, TWILIO_HOOK = "https://bot.example.org", "/webhooks/twilio/webhook"
BOT_TOKEN, SECRET, TELEGRAM_HOOK = "7000000001:AAH-test_token_0123456789abcdefghijk", "s3cret-Token", \
    "/webhooks/telegram/webhook"


@pytest.fixture(scope="module")
def rasa():
    server = RasaStandIn()
    yield server
    server.close()


@pytest.fixture(scope="module")
def twilio_api():
    server = TwilioStandIn(ACCOUNT, TOKEN)
    yield server
    server.close()


@pytest.fixture(scope="module")
def telegram_api():
    server = TelegramStandIn(BOT_TOKEN)
    yield server
    server.close()


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    monkeypatch.setattr(delivery, "BASE_DELAY", 0.01)


def with_reminders(sender: str, channel: str, count: int = 3):
    """`count` pending reminders for `sender`, all due by `LATER`."""
    profiles.remember(sender, channel, opted_out=False)
    payments = [(dt.date(2027, 1, 10) + dt.timedelta(days=30 * i), Decimal("95.500")) for i in range(count)]
    created = reminders.schedule(sender, channel, load_all()["sample-tn"], payments,
                                 now=dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc))
    assert len(reminders.pending_for(sender)) == count
    return [r.id for r in created]


def assert_none_sent(ids, rasa):
    """The reminders are cancelled, and a worker round long after their time triggers none."""
    assert {reminders.get(i).status for i in ids} == {reminders.CANCELLED}
    Worker(rasa.url, "test-token", dt.timedelta(minutes=2), batch=1000).run_once(now=LATER)
    assert {reminders.get(i).status for i in ids} == {reminders.CANCELLED}
    assert [r for i in ids for r in rasa.triggers(i)] == []


async def test_sms_stop_cancels_the_users_reminders(database_url, twilio_api, rasa):
    sender = f"+2165{uuid.uuid4().int % 10**7:07d}"
    ids = with_reminders(sender, "sms")
    params = json.loads((FIXTURES / "twilio" / "sms_stop.json").read_text(encoding="utf-8"))
    sid = f"SM{uuid.uuid4().hex}"
    params.update(From=sender, MessageSid=sid, SmsSid=sid, SmsMessageSid=sid)
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               "X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(PUBLIC + TWILIO_HOOK, params)}
    channel = TwilioInput(TwilioConfig(account_sid=ACCOUNT, auth_token=TOKEN, public_url=PUBLIC,
                                       from_sms="+21670000001", api_base=twilio_api.url))
    async with ChannelServer(channel) as server:
        status, _ = await server.post(TWILIO_HOOK, params, headers)
    assert status == 200 and profiles.get(sender).opted_out is True
    assert reminders.pending_for(sender) == []
    assert_none_sent(ids, rasa)


async def test_a_telegram_403_blocked_cancels_the_users_reminders(database_url, telegram_api, rasa):
    chat = str(5_550_000_000 + uuid.uuid4().int % 10**8)
    ids = with_reminders(chat, "telegram")
    telegram_api.fail("sendMessage", 403, "Forbidden: bot was blocked by the user", chat_id=chat)
    output = TelegramOutput(make_bot(TelegramConfig(BOT_TOKEN, "webhook", SECRET, telegram_api.url)))
    await output.send_text_message(chat, "Reminder: your payment is due")
    assert profiles.get(chat).opted_out is True
    assert_none_sent(ids, rasa)


async def test_blocking_the_telegram_bot_cancels_the_users_reminders(database_url, telegram_api, rasa):
    chat = str(5_560_000_000 + uuid.uuid4().int % 10**8)
    ids = with_reminders(chat, "telegram")
    update = json.loads((FIXTURES / "telegram" / "blocked.json").read_bytes())
    update["update_id"] = 830_000_000 + uuid.uuid4().int % 10**8
    update["my_chat_member"]["chat"]["id"] = int(chat)
    channel = TelegramInput(TelegramConfig(BOT_TOKEN, "webhook", SECRET, telegram_api.url))
    async with ChannelServer(channel) as server:
        status, _ = await server.post(TELEGRAM_HOOK, json.dumps(update).encode(),
                                      {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": SECRET})
    assert status == 200 and profiles.get(chat).opted_out is True
    assert_none_sent(ids, rasa)


def test_a_reminder_claimed_before_the_opt_out_is_not_sent(database_url, rasa):
    sender = f"+2165{uuid.uuid4().int % 10**7:07d}"
    [reminder_id] = with_reminders(sender, "sms", count=1)
    worker = Worker(rasa.url, "test-token", dt.timedelta(minutes=2), batch=1000)
    [claimed] = [r for r in reminders.claim_due(worker.name, worker.lease, limit=1000, now=LATER)
                 if r.id == reminder_id]
    profiles.opt_out(sender, "sms")  # STOP arrives while the worker holds the reminder
    assert worker.deliver(claimed) is False
    assert reminders.get(reminder_id).status == reminders.CANCELLED and rasa.triggers(reminder_id) == []


def test_reminders_of_an_opted_out_user_are_cancelled_by_the_worker(database_url, rasa):
    sender = f"+2165{uuid.uuid4().int % 10**7:07d}"
    ids = with_reminders(sender, "sms", count=2)
    profiles.remember(sender, "sms", opted_out=True)  # recorded by a path that did not cancel
    Worker(rasa.url, "test-token", dt.timedelta(minutes=2), batch=1000).run_once(now=LATER)
    assert {reminders.get(i).status for i in ids} == {reminders.CANCELLED}
    assert [r for i in ids for r in rasa.triggers(i)] == []

"""No phone number, Telegram id or message text in the logs at the default level (INFO, Rasa's).

The Telegram and Twilio channels are driven through their webhooks, talking to the stand-ins,
down every path that logs about a user: sends that fail and are retried, a send refused for
good, a blocked bot, a user who blocks the bot, a turn that fails with an error quoting the
message, a conversation store that fails with its SQL parameters and the driver's DETAIL line,
WhatsApp outside its window. Every record is formatted as a handler would (traceback included)
and searched for the ids and the texts; the lines must still tell the users apart.
"""
from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import sqlalchemy as sa

from channels import delivery
from channels.logs import who
from channels.telegram import TelegramConfig, TelegramInput
from channels.twilio import TwilioInput, TwilioSender, WhatsAppOutput
from tests.standins import ChannelServer, FakeAgent, FakeTrackerStore, TelegramStandIn, TwilioStandIn
from tests.test_channel_telegram import HOOK as TELEGRAM_HOOK, SECRET, TOKEN, body, headers, with_id
from tests.test_channel_twilio import ACCOUNT, HOOK as TWILIO_HOOK, TOKEN as TWILIO_TOKEN
from tests.test_channel_twilio import config as twilio_config, form, signed

# (sender id, what they write): every one of them must stay out of the logs
SAMIRA, SAMIRA_SAYS = "5559876501", "Je voudrais un prêt pour ma boulangerie à Sfax"
KARIM, KARIM_SAYS = "5559876502", "Mon frère a perdu son passeport hier"
YOUSSEF, YOUSSEF_SAYS = "5559876503", "Je dois rembourser combien chaque mois"
LEILA = "5559876504"  # blocks the bot
SMS_USER, SMS_SAYS = "+21650987601", "Salam, je cherche un crédit pour mon atelier"
WRONG_NUMBER, WRONG_SAYS = "+21650987602", "Merci pour votre aide madame"
WHATSAPP_USER = "whatsapp:+93700987603"
REMINDER = "Votre échéance de 350 dinars est demain"


def update(sender: str, text: str) -> bytes:
    """A recorded text update, from `sender`, saying `text`."""
    data = json.loads(with_id("text.json"))
    data["message"]["chat"]["id"] = data["message"]["from"]["id"] = int(sender)
    data["message"]["text"] = text
    return json.dumps(data).encode()


class FailingStore(FakeTrackerStore):
    """A conversation store whose database fails the way SQLAlchemy reports it."""

    async def retrieve(self, sender_id: str) -> Any:
        import psycopg2

        orig = psycopg2.OperationalError(f'duplicate key value violates unique constraint "events_pkey"\n'
                                         f'DETAIL:  Key (sender_id)=({sender_id}) already exists.')
        raise sa.exc.OperationalError("SELECT * FROM events WHERE sender_id = %(sender_id)s",
                                      {"sender_id": sender_id, "text": YOUSSEF_SAYS}, orig)


class TroubledAgent(FakeAgent):
    """Fails the turn of one message with an error that quotes it."""

    async def handle_message(self, message: Any) -> None:
        """Raises for Karim's message, else answers like `FakeAgent`."""
        if message.text == KARIM_SAYS:
            raise ValueError(f"could not understand {message.text!r} from {message.sender_id}")
        await super().handle_message(message)


@pytest.fixture
def telegram_api():
    server = TelegramStandIn(TOKEN)
    yield server
    server.close()


@pytest.fixture
def twilio_api():
    server = TwilioStandIn(ACCOUNT, TWILIO_TOKEN)
    yield server
    server.close()


def formatted(records) -> str:
    """Every record as a handler writes it, with its traceback."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(formatter.format(record) for record in records)


async def test_no_sender_id_phone_number_or_message_text_reaches_the_logs(
        database_url, telegram_api, twilio_api, caplog, monkeypatch):
    monkeypatch.setattr(delivery, "BASE_DELAY", 0.01)
    caplog.set_level(logging.INFO)  # the default level: Rasa's, the one `make run` uses

    telegram = TelegramInput(TelegramConfig(TOKEN, "webhook", SECRET, telegram_api.url))
    agent = TroubledAgent()
    agent.tracker_store = FailingStore()
    telegram_api.fail("sendMessage", 502, "Bad Gateway", times=5, chat_id=SAMIRA)
    telegram_api.fail("sendMessage", 403, "Forbidden: bot was blocked by the user", chat_id=YOUSSEF)
    blocked = json.loads(body("blocked.json"))
    blocked["update_id"] = json.loads(with_id("text.json"))["update_id"]
    blocked["my_chat_member"]["chat"]["id"] = blocked["my_chat_member"]["from"]["id"] = int(LEILA)
    async with ChannelServer(telegram, agent) as server:
        answers = [await server.post(TELEGRAM_HOOK, payload, headers()) for payload in (
            update(SAMIRA, SAMIRA_SAYS),  # the reply fails three times: retried, then given up
            update(KARIM, KARIM_SAYS),  # the turn fails with an error quoting the message
            update(YOUSSEF, "2"),  # a numbered reply: the conversation store fails
            update(YOUSSEF, YOUSSEF_SAYS),  # the reply is refused: the bot is blocked
            json.dumps(blocked).encode())]  # Leila blocks the bot
    assert [a[0] for a in answers] == [200, 503, 200, 200, 200]

    twilio = TwilioInput(twilio_config(twilio_api))
    twilio_api.fail(500, 20500, "Internal Server Error", times=3, To=SMS_USER)
    twilio_api.fail(400, 21211, f"The 'To' number {WRONG_NUMBER} is not a valid phone number.", To=WRONG_NUMBER)
    async with ChannelServer(twilio) as server:
        for sender, text in ((SMS_USER, SMS_SAYS), (WRONG_NUMBER, WRONG_SAYS)):
            params = form("sms_text.json", fresh=True, From=sender, Body=text)
            assert (await server.post(TWILIO_HOOK, params, signed(params)))[0] == 200
    outside_window = TwilioSender(twilio_config(twilio_api, whatsapp_templates={}))
    await WhatsAppOutput(outside_window).send_text_message(WHATSAPP_USER, REMINDER)

    log = formatted(caplog.records)
    secrets = [SAMIRA, KARIM, YOUSSEF, LEILA, SMS_USER.lstrip("+"), WRONG_NUMBER.lstrip("+"),
               WHATSAPP_USER.split("+")[1], SAMIRA_SAYS, KARIM_SAYS, YOUSSEF_SAYS, SMS_SAYS, WRONG_SAYS, REMINDER,
               "amina_b", "boulangerie", "passeport", "atelier"]
    leaked = [secret for secret in secrets if secret.lower() in log.lower()]
    assert leaked == [], log

    # The lines are still there, and still tell the users apart.
    assert f"Telegram sendMessage to {who(SAMIRA)} failed after 3 attempt(s)" in log
    assert f"Telegram: {who(YOUSSEF)} opted out" in log and f"Telegram: {who(LEILA)} opted out" in log
    assert f"Twilio sms message to {who(SMS_USER)} failed (attempt 1 of 3" in log
    assert f"Twilio sms message to {who(WRONG_NUMBER)} failed after 1 attempt(s)" in log
    assert f"WhatsApp: {who(WHATSAPP_USER)} is outside the 24-hour window" in log
    assert "could not read the conversation of a sender" in log and "telegram: delivery" in log
    assert len({who(s) for s in (SAMIRA, KARIM, YOUSSEF, LEILA, SMS_USER, WRONG_NUMBER)}) == 6


def test_the_app_engine_keeps_query_parameters_out_of_its_errors(database_url):
    from bot import storage

    with pytest.raises(sa.exc.DBAPIError) as caught:
        with storage.engine().begin() as db:
            db.execute(sa.text("SELECT * FROM no_such_table WHERE sender_id = :sender"), {"sender": SMS_USER})
    assert SMS_USER not in str(caught.value) and "parameters hidden" in str(caught.value)

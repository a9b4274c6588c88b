"""PostgreSQL unreachable for a few seconds: every webhook answers a retryable 503, writes
nothing half, and the service recovers by itself.

The real PostgreSQL of this machine sits behind a small TCP proxy; the app's tables and Rasa's
SQL tracker store reach it only through the proxy. Stopping the proxy closes its port and cuts
every open connection, as a database restart or a network cut does. The providers' retries are
played by posting the same signed request again.
"""
from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time
from typing import Any, Optional, Set, Tuple

import aiohttp
import pytest
import sqlalchemy as sa
from rasa.shared.core.events import UserUttered

from bot import storage
from channels import delivery
from channels.telegram import TelegramConfig, TelegramInput
from channels.twilio import TwilioInput
from channels.webchat import WebChatInput
from tests.standins import ChannelServer, FakeAgent, TelegramStandIn, TwilioStandIn
from tests.test_channel_telegram import SECRET, TOKEN as TELEGRAM_TOKEN, with_id
from tests.test_channel_twilio import ACCOUNT, HOOK as TWILIO_HOOK, STATUS as TWILIO_STATUS
from tests.test_channel_twilio import config as twilio_config, form, signed
from tests.test_dashboard_support import drop_postgres_database, postgres_database

PG = ("127.0.0.1", 5432)
TELEGRAM_HOOK = "/webhooks/telegram/webhook"
WEBCHAT_HOOK = "/webhooks/webchat/webhook"


class TcpProxy:
    """A TCP proxy to PostgreSQL, on its own thread and event loop (so that the blocking database
    calls of the code under test, wherever they run, never wait on the test's own loop)."""

    def __init__(self, target: Tuple[str, int] = PG) -> None:
        self.target = target
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: Optional[asyncio.AbstractServer] = None
        self.writers: Set[asyncio.StreamWriter] = set()

    def _run(self, coroutine) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(10)

    def start(self) -> None:
        """Opens the port: connections reach PostgreSQL."""
        self._run(self._start())

    def stop(self) -> None:
        """Closes the port and cuts every open connection."""
        self._run(self._stop())

    def close(self) -> None:
        """Stops the proxy for good."""
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    async def _start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)

    async def _stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.writers.update((writer, upstream_writer))

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while True:
                    data = await source.read(65536)
                    if not data:
                        break
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.transport.abort()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
        self.writers.difference_update((writer, upstream_writer))


class TrackerAgent(FakeAgent):
    """Stands for Rasa's agent with a real SQL tracker store: each turn reads the conversation,
    appends the user's message, saves it, then answers (as Rasa's processor does)."""

    def __init__(self, tracker_store: Any) -> None:
        super().__init__()
        self.tracker_store = tracker_store
        self.before_turn = None  # a function run (in a thread) once, before the next turn

    async def handle_message(self, message: Any) -> None:
        """One turn: read, append, save, answer."""
        if self.before_turn is not None:
            hook, self.before_turn = self.before_turn, None
            await asyncio.to_thread(hook)
        tracker = await self.tracker_store.get_or_create_tracker(message.sender_id, append_action_listen=False)
        tracker.update(UserUttered(message.text, input_channel=message.input_channel))
        await self.tracker_store.save(tracker)
        await super().handle_message(message)


@pytest.fixture(scope="module")
def proxied(database_url):
    """A fresh PostgreSQL database behind the proxy: the app's tables and a tracker store use it
    through the proxy; `direct` reaches it without (to look at what was written)."""
    from bot.tracker_store import PrivacySQLTrackerStore

    name = f"faults_test_{os.getpid()}"
    direct_url = postgres_database(name)
    if direct_url is None:
        pytest.fail("PostgreSQL is not reachable on 127.0.0.1:5432")
    storage.upgrade(direct_url)
    proxy = TcpProxy()
    proxy.start()
    before = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = str(sa.engine.make_url(direct_url).set(port=proxy.port))
    storage.engine.cache_clear()
    store = PrivacySQLTrackerStore(dialect="postgresql", host="127.0.0.1", port=proxy.port, db=name,
                                   username="postgres")
    try:
        yield proxy, store, sa.create_engine(direct_url, future=True)
    finally:
        proxy.close()
        store.engine.dispose()
        os.environ["DATABASE_URL"] = before
        storage.engine.cache_clear()
        drop_postgres_database(name)


@pytest.fixture
def apis():
    """The Telegram and Twilio API stand-ins."""
    telegram, twilio = TelegramStandIn(TELEGRAM_TOKEN), TwilioStandIn(ACCOUNT, "0123456789abcdef0123456789abcdef")
    yield telegram, twilio
    telegram.close()
    twilio.close()


async def post(server: ChannelServer, path: str, data: Any, headers: dict) -> Tuple[int, str, Optional[str], float]:
    """(status, body, Retry-After, seconds the answer took)."""
    started = time.monotonic()
    async with aiohttp.ClientSession() as client:
        async with client.post(server.url + path, data=data, headers=headers) as answer:
            return answer.status, await answer.text(), answer.headers.get("Retry-After"), time.monotonic() - started


def telegram_headers() -> dict:
    return {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": SECRET}


def written(direct: sa.engine.Engine, senders: Tuple[str, ...], deliveries: Tuple[str, ...],
            status_sid: str) -> dict:
    """What the database holds of these senders and deliveries, looked at without the proxy."""
    with direct.connect() as db:
        events = db.execute(sa.text("SELECT sender_id, type_name FROM events WHERE sender_id = ANY(:s) ORDER BY id"),
                            {"s": list(senders)}).all()
        claims = db.execute(sa.text("SELECT delivery_id, state FROM channel_deliveries WHERE delivery_id = ANY(:d)"),
                            {"d": list(deliveries)}).all()
        statuses = db.execute(sa.text("SELECT status FROM delivery_statuses WHERE message_id = :m"),
                              {"m": status_sid}).all()
    return {"events": [tuple(e) for e in events], "claims": sorted(tuple(c) for c in claims),
            "statuses": [s[0] for s in statuses]}


async def until_taken(server: ChannelServer, path: str, data: Any, headers: dict, attempts: int = 3,
                      pause: float = 0.25) -> list:
    """Posts like a provider that retries: until the answer is not a 503 (at most `attempts`)."""
    answers = []
    for _ in range(attempts):
        answers.append(await post(server, path, data, headers))
        if answers[-1][0] != 503:
            break
        await asyncio.sleep(pause)
    return answers


async def test_every_webhook_answers_503_while_postgresql_is_down_and_the_retry_is_processed_once(proxied, apis):
    proxy, store, direct = proxied
    telegram_api, twilio_api = apis
    agent = TrackerAgent(store)
    update = with_id("text.json")
    telegram_sender, update_id = "5551234001", str(json.loads(update)["update_id"])
    sms = form("sms_text.json", fresh=True, From="+21650777001")
    callback = form("status_delivered.json", MessageSid="SM" + "fa17" * 8)
    webchat = {"sender": "faults-webchat-0001", "message": "Bonjour"}
    channels = (TelegramInput(TelegramConfig(TELEGRAM_TOKEN, "webhook", SECRET, telegram_api.url)),
                TwilioInput(twilio_config(twilio_api)), WebChatInput())
    requests = [(TELEGRAM_HOOK, update, telegram_headers()), (TWILIO_HOOK, sms, signed(sms)),
                (TWILIO_STATUS, callback, signed(callback, TWILIO_STATUS)),
                (WEBCHAT_HOOK, json.dumps(webchat), {"Content-Type": "application/json"})]
    servers = [ChannelServer(channel, agent) for channel in channels]
    for server in servers:
        await server.__aenter__()
    by_path = {TELEGRAM_HOOK: servers[0], TWILIO_HOOK: servers[1], TWILIO_STATUS: servers[1], WEBCHAT_HOOK: servers[2]}
    look = (lambda: written(direct, (telegram_sender, sms["From"], webchat["sender"]),
                            (update_id, sms["MessageSid"]), callback["MessageSid"]))
    try:
        await delivery.record_status("sms", callback["MessageSid"], callback["To"], "queued")  # as its send did
        proxy.stop()
        down = [await post(by_path[path], path, data, headers) for path, data, headers in requests]
        nothing = look()
        sent_while_down = telegram_api.sent() + twilio_api.sent()
        proxy.start()
        up = [await until_taken(by_path[path], path, data, headers) for path, data, headers in requests]
        replays = [await post(by_path[path], path, data, headers) for path, data, headers in requests[:2]]
        after = look()
    finally:
        for server in servers:
            await server.__aexit__()

    for status, body, retry_after, took in down:
        assert status == 503 and retry_after is not None and int(retry_after) > 0, body
        assert "retry later" in body or "send it again" in body
        assert took < storage.CONNECT_TIMEOUT + 3
    assert nothing == {"events": [], "claims": [], "statuses": ["queued"]}  # nothing half written
    assert sent_while_down == []

    assert [answers[-1][0] for answers in up] == [200, 200, 204, 200], up
    assert [json.loads(up[0][-1][1]), up[1][-1][1].endswith("<Response></Response>")] == [
        {"status": "message"}, True]
    assert [r[0] for r in replays] == [200, 200] and json.loads(replays[0][1]) == {"status": "duplicate"}
    assert sorted(m.sender_id for m in agent.messages) == sorted([telegram_sender, sms["From"], webchat["sender"]])
    assert sorted(after["events"]) == sorted([(telegram_sender, "user"), (sms["From"], "user"),
                                              (webchat["sender"], "user")])  # each message once
    assert after["claims"] == sorted([(update_id, "done"), (sms["MessageSid"], "done")])
    assert after["statuses"] == ["delivered"]
    assert len(telegram_api.sent("sendMessage")) == 1 and len(twilio_api.sent()) == 1


async def test_postgresql_lost_in_the_middle_of_a_message_gives_503_and_the_retry_after_the_lease(
        proxied, apis, monkeypatch):
    proxy, store, direct = proxied
    telegram_api, twilio_api = apis
    monkeypatch.setattr(delivery, "LEASE_SECONDS", 1.0)
    agent = TrackerAgent(store)
    data = json.loads(with_id("text.json"))
    data["message"]["chat"]["id"] = data["message"]["from"]["id"] = 5551234002
    update, update_id = json.dumps(data).encode(), str(data["update_id"])
    sms = form("sms_text.json", fresh=True, From="+21650777002")
    telegram = TelegramInput(TelegramConfig(TELEGRAM_TOKEN, "webhook", SECRET, telegram_api.url))
    try:
        async with ChannelServer(telegram, agent) as tg, ChannelServer(TwilioInput(twilio_config(twilio_api)),
                                                                      agent) as tw:
            results = {}
            for name, server, path, body, headers in (
                    ("telegram", tg, TELEGRAM_HOOK, update, telegram_headers()),
                    ("sms", tw, TWILIO_HOOK, sms, signed(sms))):
                agent.before_turn = proxy.stop  # the claim is taken, then the database goes away
                lost = await post(server, path, body, headers)  # the release hits the same dead database
                during = written(direct, ("5551234002", sms["From"]), (update_id, sms["MessageSid"]), "-")
                proxy.start()
                # Telegram gets 503 until the lease ends; Twilio's retry waits the lease out
                retries = await until_taken(server, path, body, headers, attempts=20)
                results[name] = (lost, during, retries)
    finally:
        if proxy.server is None:
            proxy.start()

    for name, sender in (("telegram", "5551234002"), ("sms", sms["From"])):
        lost, during, retries = results[name]
        assert lost[0] == 503 and lost[2], (name, lost)
        assert not [e for e in during["events"] if e[0] == sender], name  # the turn left nothing
        assert retries[-1][0] == 200 and all(r[0] == 503 for r in retries[:-1]), (name, retries)
    after = written(direct, ("5551234002", sms["From"]), (update_id, sms["MessageSid"]), "-")
    assert sorted(after["events"]) == sorted([("5551234002", "user"), (sms["From"], "user")])
    assert after["claims"] == sorted([(update_id, "done"), (sms["MessageSid"], "done")])
    assert len(telegram_api.sent("sendMessage")) == 1 and len(twilio_api.sent()) == 1

"""The delivery lease, on SQLite and on this machine's real PostgreSQL.

A delivery (Telegram `update_id`, Twilio `MessageSid`) is claimed `processing` with a lease the
handling replica renews, and marked `done` after. Concurrent claims, from threads with their own
connections as replicas have, give the delivery to exactly one of them; a replica killed with
SIGKILL in the middle of a message stops renewing, and the redelivery is processed after the
lease instead of being dropped as a duplicate.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot import storage
from bot.channel_store import ChannelDelivery
from channels import delivery
from tests.test_dashboard_support import drop_postgres_database, postgres_database

ROOT = Path(__file__).resolve().parent.parent
THREADS = 8


def use_database(url: str):
    """Points the app tables at `url`; returns a function that points them back."""
    before = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = url
    storage.engine.cache_clear()

    def restore() -> None:
        if before is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = before
        storage.engine.cache_clear()

    return restore


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def lease_db(request, tmp_path_factory, database_url):
    """A migrated database of each kind, the app's tables pointed at it."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('lease') / 'lease.db'}"
        storage.upgrade(url)
        restore = use_database(url)
        yield url
        restore()
        return
    name = f"lease_test_{os.getpid()}"
    url = postgres_database(name)
    if url is None:
        pytest.fail("PostgreSQL is not reachable on 127.0.0.1:5432")
    storage.upgrade(url)
    restore = use_database(url)
    yield url
    restore()
    drop_postgres_database(name)


def row(channel: str, delivery_id: str):
    """The claim of a delivery, or None."""
    table = ChannelDelivery.__table__
    with storage.engine().connect() as db:
        return db.execute(sa.select(table.c.state, table.c.claimed_at).where(
            table.c.channel == channel, table.c.delivery_id == delivery_id)).first()


def put_claim(channel: str, delivery_id: str, state: str, claimed_at: dt.datetime) -> None:
    """A claim as another replica left it."""
    with storage.engine().begin() as db:
        db.execute(sa.insert(ChannelDelivery.__table__).values(
            channel=channel, delivery_id=delivery_id, sender_id="5550000001", received_at=claimed_at,
            state=state, claimed_at=claimed_at))


def claim_from_threads(delivery_id: str) -> Counter:
    """THREADS replicas claim the same delivery at the same moment; how each claim ended."""
    barrier = threading.Barrier(THREADS)
    results, errors = [], []

    def replica() -> None:
        try:
            barrier.wait()
            results.append(delivery._claim("telegram", delivery_id, "5550000001", 10).state)
        except Exception as error:  # pragma: no cover - shown by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=replica) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return Counter(results)


def test_concurrent_first_claims_give_the_delivery_to_one_replica(lease_db):
    delivery_id = f"first-{time.monotonic_ns()}"
    assert claim_from_threads(delivery_id) == {delivery.NEW: 1, delivery.BUSY: THREADS - 1}
    assert row("telegram", delivery_id).state == delivery.PROCESSING


def test_concurrent_take_overs_of_an_expired_lease_give_it_to_one_replica(lease_db):
    delivery_id = f"stale-{time.monotonic_ns()}"
    put_claim("telegram", delivery_id, delivery.PROCESSING, storage.utcnow() - dt.timedelta(seconds=60))
    assert claim_from_threads(delivery_id) == {delivery.RETAKEN: 1, delivery.BUSY: THREADS - 1}
    assert (storage.utcnow() - row("telegram", delivery_id).claimed_at).total_seconds() < 5


def test_a_done_claim_is_a_duplicate_and_a_released_one_is_claimed_again(lease_db):
    delivery_id = f"done-{time.monotonic_ns()}"
    assert delivery._claim("telegram", delivery_id, "5550000001", 10).state == delivery.NEW
    busy = delivery._claim("telegram", delivery_id, "5550000001", 10)
    assert busy.state == delivery.BUSY and 9 < busy.seconds_left <= 10
    delivery._release("telegram", delivery_id)
    assert delivery._claim("telegram", delivery_id, "5550000001", 10).state == delivery.NEW
    delivery._finish("telegram", delivery_id)
    put_claim("telegram", f"{delivery_id}-old", delivery.DONE, storage.utcnow() - dt.timedelta(days=1))
    for done in (delivery_id, f"{delivery_id}-old"):  # a done claim never expires
        assert delivery._claim("telegram", done, "5550000001", 10).state == delivery.DUPLICATE


CHILD = """
import asyncio, pathlib, sys
from channels import delivery

async def work():
    pathlib.Path(sys.argv[2]).write_text("started")
    await asyncio.sleep(3600)  # a long turn: killed before it ends
    return "message"

asyncio.run(delivery.process_once("telegram", sys.argv[1], "5550000002", work))
"""


async def test_a_replica_killed_mid_message_leaves_it_to_the_redelivery(lease_db, tmp_path, monkeypatch):
    lease = 1.0
    monkeypatch.setattr(delivery, "LEASE_SECONDS", lease)
    delivery_id, started = f"killed-{time.monotonic_ns()}", tmp_path / "started"
    env = dict(os.environ, DATABASE_URL=lease_db, DELIVERY_LEASE_SECONDS=str(lease), PYTHONPATH=str(ROOT))
    child = subprocess.Popen([sys.executable, "-c", CHILD, delivery_id, str(started)], cwd=ROOT, env=env)
    try:
        for _ in range(600):
            if started.exists() or child.poll() is not None:
                break
            await asyncio.sleep(0.05)
        assert started.exists(), "the replica never started the message"
        first = row("telegram", delivery_id).claimed_at
        await asyncio.sleep(lease * 1.5)
        assert row("telegram", delivery_id).claimed_at > first  # alive, it renews its lease
        assert await delivery.process_once("telegram", delivery_id, "5550000002", _never) == ("busy", 503)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
    handled = []

    async def work() -> str:
        handled.append(delivery_id)
        return "message"

    await asyncio.sleep(lease + 0.2)
    assert await delivery.process_once("telegram", delivery_id, "5550000002", work) == ("message", 200)
    assert await delivery.process_once("telegram", delivery_id, "5550000002", work) == ("duplicate", 200)
    assert handled == [delivery_id] and row("telegram", delivery_id).state == delivery.DONE


async def _never() -> str:
    raise AssertionError("a delivery another replica holds must not be processed")


async def test_a_message_is_handled_to_the_end_when_the_provider_hangs_up(lease_db):
    delivery_id, finished = f"hangup-{time.monotonic_ns()}", asyncio.Event()

    async def work() -> str:
        await asyncio.sleep(0.3)
        finished.set()
        return "message"

    request = asyncio.ensure_future(delivery.process_once("telegram", delivery_id, "5550000003", work))
    await asyncio.sleep(0.1)
    request.cancel()  # what Sanic does when the provider closes the connection
    await asyncio.wait_for(finished.wait(), 5)
    for _ in range(50):
        if row("telegram", delivery_id).state == delivery.DONE:
            break
        await asyncio.sleep(0.05)
    assert row("telegram", delivery_id).state == delivery.DONE

"""Does Rasa OSS's `RedisLockStore` race between replicas? On this machine's real Redis.

Rasa's store issues a ticket as read lock, add ticket in Python, write lock. Two replicas that
both read before either writes take the same ticket number or overwrite each other's ticket;
both then believe they hold the conversation. The window is a network round trip, so the test
widens it (a replica that pauses 20 ms between its read and its write, as a busy or preempted
process does) to make the race certain rather than likely. `AtomicRedisLockStore` does the
same work in one Lua script: no window to widen, no duplicate, and never two holders at once.
"""
from __future__ import annotations

import asyncio
import threading
import time
import uuid
from typing import List

import pytest

redis = pytest.importorskip("redis")

REPLICAS = 8


def redis_up() -> bool:
    try:
        return bool(redis.Redis(socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


pytestmark = pytest.mark.skipif(not redis_up(), reason="no Redis on 127.0.0.1:6379")


def slow_rasa_store():
    """Rasa's own RedisLockStore, pausing between reading the lock and writing it back."""
    from rasa.core.lock_store import RedisLockStore

    class SlowRedisLockStore(RedisLockStore):
        def get_lock(self, conversation_id):
            lock = super().get_lock(conversation_id)
            time.sleep(0.02)
            return lock

    return SlowRedisLockStore(host="127.0.0.1", port=6379, db=0, key_prefix="racetest")


def slow_atomic_store():
    """Our store, given the same pause wherever Python code runs between Redis calls."""
    from bot.lock_store import AtomicRedisLockStore

    class SlowAtomic(AtomicRedisLockStore):
        def issue_ticket(self, conversation_id, lock_lifetime=None):
            time.sleep(0.02)
            return super().issue_ticket(conversation_id, lock_lifetime)

    return SlowAtomic(host="127.0.0.1", port=6379, db=0, key_prefix="racetest", lock_lifetime=10)


def issue_concurrently(make_store, conversation: str) -> List[int]:
    """Each replica (its own store and connection) issues one ticket at the same moment."""
    stores = [make_store() for _ in range(REPLICAS)]
    barrier = threading.Barrier(REPLICAS)
    numbers: List[int] = []

    def replica(store):
        barrier.wait()
        numbers.append(store.issue_ticket(conversation, 30))

    threads = [threading.Thread(target=replica, args=(s,)) for s in stores]
    [t.start() for t in threads]
    [t.join() for t in threads]
    return numbers


def test_rasa_redis_lock_store_races_between_replicas():
    conversation = f"race-{uuid.uuid4().hex}"
    numbers = issue_concurrently(slow_rasa_store, conversation)
    lock = slow_rasa_store().get_lock(conversation)
    kept = len(lock.tickets) if lock else 0
    # duplicates, or tickets lost because one replica overwrote another's write
    assert len(set(numbers)) < REPLICAS or kept < REPLICAS
    slow_rasa_store().delete_lock(conversation)


def test_atomic_lock_store_issues_unique_tickets_and_keeps_them_all():
    conversation = f"race-{uuid.uuid4().hex}"
    numbers = issue_concurrently(slow_atomic_store, conversation)
    assert sorted(numbers) == list(range(1, REPLICAS + 1))
    assert len(slow_atomic_store().get_lock(conversation).tickets) == REPLICAS
    slow_atomic_store().delete_lock(conversation)


async def _hold(store, conversation: str, inside: List[int], overlaps: List[int], order: List[int], index: int):
    async with store.lock(conversation):
        inside.append(index)
        if len(inside) > 1:
            overlaps.append(len(inside))
        order.append(index)
        await asyncio.sleep(0.01)
        inside.remove(index)


def test_atomic_lock_store_never_lets_two_replicas_hold_a_conversation():
    from bot.lock_store import AtomicRedisLockStore

    conversation = f"race-{uuid.uuid4().hex}"

    async def main():
        stores = [AtomicRedisLockStore(key_prefix="racetest", lock_lifetime=10, poll_interval=0.005)
                  for _ in range(REPLICAS)]
        inside, overlaps, order = [], [], []
        await asyncio.gather(*(_hold(s, conversation, inside, overlaps, order, i)
                               for i, s in enumerate(stores) for _ in range(5)))
        return overlaps, order

    overlaps, order = asyncio.run(main())
    assert overlaps == [] and len(order) == REPLICAS * 5
    assert AtomicRedisLockStore(key_prefix="racetest").get_lock(conversation) is None

"""A Redis lock store whose tickets are issued atomically, for several Rasa replicas.

Rasa OSS's `RedisLockStore` reads a conversation's ticket lock, adds a ticket in Python and
writes the lock back: two replicas issuing tickets at the same moment both read the same lock,
both take the same ticket number (or one overwrites the other's ticket), and both process the
conversation at once (`tests/test_faults_lock_race.py` shows it on this machine's Redis).

`AtomicRedisLockStore` keeps the same ticket-lock behaviour (first come, first served per
conversation) but every change runs as one Lua script inside Redis, so it is atomic. Times are
Redis's own clock, so replicas with skewed clocks agree. A ticket lives `lock_lifetime` seconds
and its holder renews it while it waits and works, so a replica killed mid-message frees the
conversation within `lock_lifetime` seconds instead of Rasa's 60. Loaded from `endpoints.yml`:

    lock_store:
      type: bot.lock_store.AtomicRedisLockStore
      url: 127.0.0.1          # Redis host
      port: 6379
      db: 0
      password: ""            # optional
      key_prefix: returnee    # optional, alphanumeric
      lock_lifetime: 10       # optional, seconds
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from contextlib import asynccontextmanager, suppress
from typing import Any, AsyncGenerator, List, Optional, Text, Tuple

from rasa.core.lock import Ticket, TicketLock
from rasa.core.lock_store import LockError, LockStore
from rasa.utils.endpoints import EndpointConfig

logger = logging.getLogger(__name__)

DEFAULT_LIFETIME = 10.0  # seconds a ticket lives without renewal
DEFAULT_POLL = 0.05  # seconds between two looks at the lock while waiting for it
KEY_PREFIX = "lock:"

# Every script first drops expired tickets. KEYS[1]: the tickets (a sorted set, member: ticket
# number, score: expiry in ms of Redis time); KEYS[2]: the counter that numbers them.
_PRELUDE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local function head()
  local first = nil
  for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    local n = tonumber(member)
    if first == nil or n < first then first = n end
  end
  return first
end
local function keep_keys_alive()
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  if last[2] then
    redis.call('PEXPIREAT', KEYS[1], math.ceil(tonumber(last[2])) + 1000)
    redis.call('PEXPIREAT', KEYS[2], math.ceil(tonumber(last[2])) + 1000)
  end
end
"""
ISSUE = _PRELUDE + """
local n = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), n)
keep_keys_alive()
return n
"""
# Returns 1 when ARGV[1] is served, 0 while it waits, -1 when it expired.
STATUS = _PRELUDE + """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return -1 end
if head() == tonumber(ARGV[1]) then return 1 end
return 0
"""
RENEW = _PRELUDE + """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
keep_keys_alive()
return 1
"""
FINISH = _PRELUDE + """
redis.call('ZREM', KEYS[1], ARGV[1])
if redis.call('ZCARD', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[1], KEYS[2])
  return 0
end
keep_keys_alive()
return redis.call('ZCARD', KEYS[1])
"""
SNAPSHOT = _PRELUDE + """
return redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
"""
REPLACE = _PRELUDE + """
redis.call('DEL', KEYS[1])
local highest = 0
for i = 1, #ARGV, 2 do
  redis.call('ZADD', KEYS[1], ARGV[i + 1], ARGV[i])
  highest = math.max(highest, tonumber(ARGV[i]))
end
if highest > tonumber(redis.call('GET', KEYS[2]) or '0') then redis.call('SET', KEYS[2], highest) end
keep_keys_alive()
return #ARGV / 2
"""


class AtomicRedisLockStore(LockStore):
    """Ticket locks in Redis, every operation one atomic Lua script (see the module docstring)."""

    def __init__(self, endpoint_config: Optional[EndpointConfig] = None, host: Text = "127.0.0.1",
                 port: int = 6379, db: int = 0, password: Optional[Text] = None,
                 key_prefix: Optional[Text] = None, lock_lifetime: float = DEFAULT_LIFETIME,
                 poll_interval: float = DEFAULT_POLL, socket_timeout: float = 10) -> None:
        import redis

        if endpoint_config is not None:
            options = dict(endpoint_config.kwargs)
            host = endpoint_config.url or host
            port = options.get("port") or port
            db = options.get("db") or db
            password = options.get("password") or password
            key_prefix = options.get("key_prefix") or key_prefix
            lock_lifetime = options.get("lock_lifetime") or lock_lifetime
            poll_interval = options.get("poll_interval") or poll_interval
        self.red = redis.Redis(host=host, port=int(port), db=int(db), password=password or None,
                               socket_timeout=float(socket_timeout), socket_connect_timeout=float(socket_timeout))
        self.key_prefix = KEY_PREFIX
        if key_prefix:
            if not str(key_prefix).isalnum():
                raise ValueError(f"key_prefix must be alphanumeric, not {key_prefix!r}")
            self.key_prefix = f"{key_prefix}:{KEY_PREFIX}"
        self.lifetime = float(lock_lifetime)
        self.poll_interval = float(poll_interval)
        self._issue, self._status, self._renew, self._finish, self._snapshot, self._replace = (
            self.red.register_script(s) for s in (ISSUE, STATUS, RENEW, FINISH, SNAPSHOT, REPLACE))
        super().__init__()

    def _keys(self, conversation_id: Text) -> List[str]:
        key = self.key_prefix + conversation_id
        return [key, key + ":counter"]

    def _ms(self, lifetime: Optional[float] = None) -> int:
        return int(1000 * (lifetime if lifetime is not None else self.lifetime))

    # ---- Rasa's LockStore interface, each method one atomic script -------------------------

    def issue_ticket(self, conversation_id: Text, lock_lifetime: Optional[float] = None) -> int:
        """Issues the next ticket of the conversation (atomically: INCR and ZADD in one script).

        `lock_lifetime` is ignored: tickets live the store's `lock_lifetime` and are renewed by
        their holder (Rasa's callers pass its 60-second default).
        """
        try:
            return int(self._issue(keys=self._keys(conversation_id), args=[self._ms()]))
        except Exception as error:  # a Redis failure: Rasa's callers expect a LockError
            raise LockError(f"Error while issuing a ticket: {error}") from error

    def ticket_status(self, conversation_id: Text, ticket: int) -> int:
        """1 if `ticket` is served now, 0 if it waits, -1 if it expired."""
        return int(self._status(keys=self._keys(conversation_id), args=[ticket]))

    def renew(self, conversation_id: Text, ticket: int) -> bool:
        """Extends the life of a live ticket; False if it had already expired."""
        return bool(self._renew(keys=self._keys(conversation_id), args=[ticket, self._ms()]))

    def finish_serving(self, conversation_id: Text, ticket_number: int) -> None:
        """Removes the ticket; the lock disappears with its last ticket."""
        self._finish(keys=self._keys(conversation_id), args=[ticket_number])

    def cleanup(self, conversation_id: Text, ticket_number: int) -> None:
        """Removes the ticket (and the lock when nobody waits), in one step."""
        self.finish_serving(conversation_id, ticket_number)

    def _tickets(self, conversation_id: Text) -> List[Tuple[int, float]]:
        flat = self._snapshot(keys=self._keys(conversation_id), args=[])
        pairs = [(int(flat[i]), float(flat[i + 1]) / 1000) for i in range(0, len(flat), 2)]
        return sorted(pairs)

    def get_lock(self, conversation_id: Text) -> Optional[TicketLock]:
        """A snapshot of the conversation's lock (expiries in Redis time), or None."""
        tickets = self._tickets(conversation_id)
        if not tickets:
            return None
        return TicketLock(conversation_id, deque(Ticket(n, expires) for n, expires in tickets))

    def is_someone_waiting(self, conversation_id: Text) -> bool:
        """Whether the conversation has a live ticket."""
        return bool(self._tickets(conversation_id))

    def save_lock(self, lock: TicketLock) -> None:
        """Replaces the conversation's tickets by those of `lock`, atomically."""
        args: List[Any] = []
        for ticket in lock.tickets:
            args += [ticket.number, int(ticket.expires * 1000)]
        self._replace(keys=self._keys(lock.conversation_id), args=args)

    def delete_lock(self, conversation_id: Text) -> None:
        """Deletes the conversation's lock and its counter."""
        deleted = self.red.delete(*self._keys(conversation_id))
        self._log_deletion(conversation_id, bool(deleted))

    def update_lock(self, conversation_id: Text) -> None:
        """Nothing to do: every script drops expired tickets itself."""

    # ---- acquiring ---------------------------------------------------------------------------

    @asynccontextmanager
    async def lock(self, conversation_id: Text, lock_lifetime: Optional[float] = None,
                   wait_time_in_seconds: Optional[float] = None) -> AsyncGenerator[int, None]:
        """Holds the conversation's lock for the body of the `async with`.

        Waits its turn (polling every `poll_interval`), renewing its ticket meanwhile, and raises
        `LockError` if the ticket expired (Redis lost it, or this process stalled longer than
        `lock_lifetime`). Rasa's arguments are accepted and ignored (see `issue_ticket`).
        """
        ticket = self.issue_ticket(conversation_id)
        renewer = asyncio.get_running_loop().create_task(self._keep_alive(conversation_id, ticket))
        try:
            await self._wait_for_turn(conversation_id, ticket)
            yield ticket
        finally:
            renewer.cancel()
            with suppress(asyncio.CancelledError):
                await renewer
            try:
                self.cleanup(conversation_id, ticket)
            except Exception:  # the ticket then expires by itself
                logger.exception("could not release a conversation lock")

    async def _wait_for_turn(self, conversation_id: Text, ticket: int) -> None:
        while True:
            status = self.ticket_status(conversation_id, ticket)
            if status == 1:
                return
            if status == -1:
                raise LockError(f"the lock ticket {ticket} expired before its turn")
            await asyncio.sleep(self.poll_interval)

    async def _keep_alive(self, conversation_id: Text, ticket: int) -> None:
        every = self.lifetime / 3
        while True:
            await asyncio.sleep(every)
            try:
                if not self.renew(conversation_id, ticket):
                    logger.warning("a conversation lock ticket expired while held")
                    return
            except Exception:  # Redis unreachable for a moment: try again next round
                logger.warning("could not renew a conversation lock ticket", exc_info=True)

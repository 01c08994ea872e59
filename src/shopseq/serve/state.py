"""Each user's recent items: the live state recommendations read (the feedback loop).

Two stores behind one interface, :class:`UserState`:

* :class:`MemoryState` (the default): a bounded dictionary in this process, rebuilt from the event
  log at start; nothing else to run.
* :class:`RedisState`: one Redis list per user, so several replicas share the state; it remembers
  how far into each event log it has applied, so a restart applies only what is new.

Both apply events only after the log has fsynced them, so the state never holds an event that
could be lost.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Sequence
from typing import Any, Protocol

from shopseq.errors import StoreError

__all__ = ["MemoryState", "RedisState", "UserState", "open_state"]


class UserState(Protocol):
    """What the service needs from a state store."""

    kind: str

    def recent(self, user: str) -> list[str]:
        """Return the user's recent items, oldest first (empty when unknown)."""
        ...

    def extend(self, events: Sequence[tuple[str, str]], log_id: str, last_seq: int) -> None:
        """Append ``(user, item)`` events in order, then record ``last_seq`` of ``log_id``."""
        ...

    def applied_seq(self, log_id: str) -> int:
        """Return the last sequence number of ``log_id`` applied (0: none)."""
        ...

    def n_users(self) -> int:
        """Return the number of users held."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class MemoryState:
    """Recent items per user in this process (bounded in users and in items per user).

    Args:
        max_recent: Items kept per user.
        max_users: Users kept; the least recently active are dropped first.
    """

    kind = "memory"

    def __init__(self, max_recent: int, max_users: int) -> None:
        self.max_recent = max_recent
        self.max_users = max_users
        self._users: OrderedDict[str, deque[str]] = OrderedDict()
        self._applied: dict[str, int] = {}
        self._lock = threading.Lock()

    def recent(self, user: str) -> list[str]:
        """Return the user's recent items, oldest first."""
        with self._lock:
            items = self._users.get(user)
            return list(items) if items is not None else []

    def extend(self, events: Sequence[tuple[str, str]], log_id: str, last_seq: int) -> None:
        """Append events in order and record how far into the log they reach."""
        with self._lock:
            users = self._users
            for user, item in events:
                items = users.get(user)
                if items is None:
                    items = users[user] = deque(maxlen=self.max_recent)
                    if len(users) > self.max_users:
                        users.popitem(last=False)
                else:
                    users.move_to_end(user)
                items.append(item)
            self._applied[log_id] = max(self._applied.get(log_id, 0), last_seq)

    def applied_seq(self, log_id: str) -> int:
        """Return the last applied sequence number of a log."""
        return self._applied.get(log_id, 0)

    def n_users(self) -> int:
        """Return the number of users held."""
        return len(self._users)

    def close(self) -> None:
        """Nothing to release."""


class RedisState:
    """Recent items per user in Redis (``<prefix>u:<user>`` lists), shared by replicas.

    Args:
        url: ``redis://host:port/db``.
        prefix: Prefix of every key.
        max_recent: Items kept per user.

    Raises:
        StoreError: If Redis cannot be reached.
    """

    kind = "redis"

    def __init__(self, url: str, prefix: str, max_recent: int) -> None:
        try:
            import redis
        except ImportError as err:  # pragma: no cover - depends on the optional extra
            raise StoreError("the Redis state needs: pip install 'shopseq[serve]'") from err
        self.prefix = prefix
        self.max_recent = max_recent
        self._redis: Any = redis.Redis.from_url(url, socket_timeout=5, decode_responses=True)
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError,)
        try:
            self._redis.ping()
        except self._errors as err:
            raise StoreError(f"cannot reach Redis at {_safe_url(url)}: {err}") from err

    def _user_key(self, user: str) -> str:
        return f"{self.prefix}u:{user}"

    def recent(self, user: str) -> list[str]:
        """Return the user's recent items, oldest first."""
        try:
            items: list[str] = self._redis.lrange(self._user_key(user), 0, -1)
        except self._errors as err:
            raise StoreError(f"Redis read failed: {err}") from err
        return items

    def extend(self, events: Sequence[tuple[str, str]], log_id: str, last_seq: int) -> None:
        """Append events in order (one MULTI/EXEC) and record how far into the log they reach."""
        grouped: dict[str, list[str]] = {}
        for user, item in events:
            grouped.setdefault(user, []).append(item)
        try:
            with self._redis.pipeline(transaction=True) as pipe:
                for user, items in grouped.items():
                    key = self._user_key(user)
                    pipe.rpush(key, *items)
                    pipe.ltrim(key, -self.max_recent, -1)
                if grouped:
                    pipe.sadd(f"{self.prefix}users", *grouped)
                # Only ever move forward: replicas may apply the same log in any order.
                pipe.eval(
                    "local v = tonumber(redis.call('GET', KEYS[1]) or '0') "
                    "if tonumber(ARGV[1]) > v then redis.call('SET', KEYS[1], ARGV[1]) end",
                    1,
                    f"{self.prefix}applied:{log_id}",
                    last_seq,
                )
                pipe.execute()
        except self._errors as err:
            raise StoreError(f"Redis write failed: {err}") from err

    def applied_seq(self, log_id: str) -> int:
        """Return the last applied sequence number of a log."""
        value = self._redis.get(f"{self.prefix}applied:{log_id}")
        return int(value) if value is not None else 0

    def n_users(self) -> int:
        """Return the number of users held."""
        return int(self._redis.scard(f"{self.prefix}users"))

    def close(self) -> None:
        """Close the connection pool."""
        self._redis.close()


def _safe_url(url: str) -> str:
    """The URL without a password (it must not reach a log or a message)."""
    if "@" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def open_state(url: str, prefix: str, max_recent: int, max_users: int) -> UserState:
    """Open the state store a config names.

    Args:
        url: ``memory`` or a ``redis://`` URL.
        prefix: Redis key prefix.
        max_recent: Items kept per user.
        max_users: Users kept by the in-memory state.

    Returns:
        The store.
    """
    if url == "memory":
        return MemoryState(max_recent, max_users)
    return RedisState(url, prefix, max_recent)

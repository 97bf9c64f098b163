"""A Redis probe whose verdict a busy event loop cannot fake.

The gate decides "Redis is down" from probes, not from one slow enqueue: an enqueue's
timeout also counts the time its task waited for a busy event loop (two CPU hogs on two
cores are enough to trip a 25 ms budget with Redis perfectly healthy). A probe here is a
blocking PING on a socket of its own, run in a thread by the caller: the socket timeout
measures only Redis and the network.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from redis import exceptions as redis_errors
from redis.backoff import NoBackoff
from redis.retry import Retry

from ils.jobs.stores.redis.connect import sync_client
from ils.redis_settings import RedisConnection


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One probe: whether Redis answered, and its eviction policy when it did."""

    ok: bool
    error: str | None = None
    #: ``maxmemory-policy`` (``None`` when unknown or not asked).
    policy: str | None = None
    #: Redis refused the connection: certain evidence of an outage.
    refused: bool = False


class ThreadProbe:
    """PING (and, when asked, the eviction policy) over a blocking connection.

    Call it from a worker thread (``asyncio.to_thread``); calls are serialised, so one
    connection serves every probe of the process.
    """

    def __init__(self, connection: RedisConnection | str, timeout_ms: int) -> None:
        timeout_s = timeout_ms / 1000
        self._client = sync_client(
            connection,
            socket_timeout_s=timeout_s,
            connect_timeout_s=timeout_s,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )
        self._lock = threading.Lock()

    def __call__(self, *, with_policy: bool = False) -> ProbeResult:
        with self._lock:
            try:
                self._client.ping()
                policy = self._policy() if with_policy else None
            except (redis_errors.RedisError, OSError) as err:
                # A half-read reply must not be read as the next probe's answer.
                self._client.connection_pool.disconnect()
                refused = "refused" in str(err).lower()
                return ProbeResult(False, f"{type(err).__name__}: {err}", refused=refused)
            return ProbeResult(True, policy=policy)

    def _policy(self) -> str | None:
        info = self._client.info("memory")
        policy = info.get("maxmemory_policy")
        if policy:
            return str(policy)
        try:
            reply = self._client.config_get("maxmemory-policy")
        except redis_errors.ResponseError:  # CONFIG is often disabled on managed Redis
            return None
        value = reply.get("maxmemory-policy")
        return None if value is None else str(value)

    def reconnect(self) -> None:
        """Drop the probe's connection (the master moved); the next probe connects to
        the master the sentinels name then. Waits for a probe that is running."""
        with self._lock:
            self._client.connection_pool.disconnect()

    def close(self) -> None:
        """Release the probe's connection."""
        with self._lock:
            self._client.close()

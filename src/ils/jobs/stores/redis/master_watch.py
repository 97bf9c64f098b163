"""Following a Sentinel fail-over at once, not when the old master is demoted.

Why: redis-py asks the sentinels for the master only when it opens a connection. A
fail-over that leaves the old master running (``SENTINEL FAILOVER`` for maintenance, a
network split that heals) leaves every connection made before on the old master until
the sentinels demote it, about 8 s later. What a worker does there meanwhile (claims,
lock renewals, completions) is thrown away when it resyncs, while the new master, which
never heard of those renewals, lets the same jobs' locks expire and hands them out
again: measured in ``tests/deploy/test_redis_sentinel.py``, 250 jobs ran 402-558
times, and now and then one ran into the stalled limit and failed.

The watch asks every sentinel for the master every ``interval_s`` and believes the
answer of the newest configuration (the highest config epoch: a sentinel that has not
yet heard of the fail-over names the old master). When that master changes, its
``on_switch`` drops the connections that go elsewhere; their next commands connect
through the sentinels to the new one. What runs on the old master in the interval is
still thrown away (Redis's replication is asynchronous; ``min-replicas-to-write``
makes the old master refuse it instead, see docs/deploy.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from redis import exceptions as redis_errors
from redis.asyncio.sentinel import Sentinel

from ils.jobs.stores.redis.connect import async_sentinel
from ils.redis_settings import RedisConnection

#: A master's address as the sentinels give it.
Address = tuple[str, int]


class MasterWatch:
    """Asks the sentinels for the master on a timer; calls ``on_switch`` when it moves."""

    def __init__(
        self,
        connection: RedisConnection,
        interval_s: float,
        on_switch: Callable[[Address], Awaitable[None]],
        *,
        timeout_s: float,
    ) -> None:
        self._service = connection.service
        self._sentinel: Sentinel = async_sentinel(connection, timeout_s)
        self._interval_s = interval_s
        self._on_switch = on_switch
        self._timeout_s = timeout_s
        #: The master last named; ``None`` until a sentinel has answered.
        self.master: Address | None = None
        self._task: asyncio.Task[None] | None = None
        self._log = logging.getLogger(__name__)

    def start(self) -> None:
        """Start watching (again, if it had stopped); a no-op while it runs."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="redis-master-watch")

    async def close(self) -> None:
        """Stop watching and close the sentinel connections."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._sentinel.aclose()

    async def check(self) -> None:
        """Ask once; on a new master, ``on_switch`` runs before this returns. The new
        master is taken as followed only once ``on_switch`` succeeded, so a failed one
        is tried again at the next check."""
        master = await self.current_master()
        if master is None or master == self.master:
            return
        if self.master is not None:
            self._log.warning(
                "Redis master moved (Sentinel fail-over): connections to the old one "
                "are dropped and made again to the new one"
            )
            await self._on_switch(master)
        self.master = master

    async def current_master(self) -> Address | None:
        """The master named by the sentinel with the newest configuration that sees it
        up; ``None`` when no sentinel answered so."""
        answers = await asyncio.gather(
            *(self._ask(sentinel) for sentinel in self._sentinel.sentinels)
        )
        named = [answer for answer in answers if answer is not None]
        if not named:
            return None
        _, master = max(named, key=lambda answer: answer[0])
        return master

    async def _ask(self, sentinel: Any) -> tuple[int, Address] | None:
        """One sentinel's view: (config epoch, master), or ``None`` (unreachable, or it
        sees no healthy master)."""
        try:
            async with asyncio.timeout(self._timeout_s):
                state = await sentinel.sentinel_master(self._service)
        except (redis_errors.RedisError, OSError, TimeoutError):
            return None
        if not self._sentinel.check_master_state(state, self._service):
            return None
        return int(state["config-epoch"]), (str(state["ip"]), int(state["port"]))

    async def _run(self) -> None:
        while True:
            try:
                await self.check()
            except Exception:  # a bug here must not end the watch for good
                self._log.exception("checking the Redis master failed")
            await asyncio.sleep(self._interval_s)

"""Whether Redis is usable right now, decided without ever blocking a caller.

The gate is a small circuit breaker: an enqueue that fails or times out opens it, and
from then on producers go straight to the local store (no Redis round trip, so no
latency) while a background probe pings Redis every ``probe_interval_s``; the first
successful ping closes it again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from ils.clock import Clock

Ping = Callable[[], Awaitable[bool]]


class RedisGate:
    """Open when Redis is known to be down, closed (usable) otherwise."""

    def __init__(self, ping: Ping, clock: Clock, probe_interval_s: float) -> None:
        self._ping = ping
        self._clock = clock
        self._probe_interval_s = probe_interval_s
        self._up = False
        self._down_since_ms: int | None = None
        self._probe: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self.logger = logging.getLogger("ils.redis")

    @property
    def up(self) -> bool:
        """Whether producers should try Redis."""
        return self._up

    @property
    def down_since_ms(self) -> int | None:
        """When Redis was last seen failing (epoch ms), ``None`` while it is up."""
        return self._down_since_ms

    async def check(self) -> bool:
        """Ping now and update the state (start-up uses this)."""
        if await self._ping():
            self.mark_up()
        else:
            self.mark_down("not reachable")
        return self._up

    def mark_up(self) -> None:
        if not self._up:
            if self._down_since_ms is not None:
                self.logger.warning("Redis is reachable again: new jobs go to Redis")
            self._up = True
            self._down_since_ms = None
            self._changed.set()

    def mark_down(self, reason: str) -> None:
        if self._up or self._down_since_ms is None:
            self.logger.error(
                "Redis unavailable (%s): jobs go to the local store until it is back", reason
            )
            self._down_since_ms = self._clock.now_ms()
        self._up = False
        self._changed.set()

    def start_probing(self) -> None:
        """Probe in the background while down (idempotent)."""
        if self._probe is None or self._probe.done():
            self._probe = asyncio.create_task(self._probe_loop(), name="redis-probe")

    async def _probe_loop(self) -> None:
        while True:
            await asyncio.sleep(self._probe_interval_s)
            if not self._up and await self._ping():
                self.mark_up()

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            await asyncio.gather(self._probe, return_exceptions=True)

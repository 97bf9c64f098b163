"""Whether Redis is usable right now, decided from evidence load cannot fake.

The gate is a small circuit breaker with three states:

- *up*: producers and workers use Redis.
- *suspect*: a call failed in a way a busy process can cause too (a timeout, a dropped
  connection). Everyone keeps using Redis while a confirmation runs: probes in a
  thread (``ThreadProbe``), whose timing is Redis's and the network's only. Only
  ``failures_to_open`` consecutive failed probes open the gate; one answer clears it.
- *down* (open): Redis refused a connection, or the probes confirmed it. Producers go
  straight to the local store (no Redis round trip, so no latency) and a background
  probe tries every ``probe_interval_s``; the first answer closes the gate again.

When Redis comes back the eviction policy is read again: with ``require_noeviction`` a
Redis that came back (or failed over) with an evicting policy stays unused.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from ils.clock import Clock
from ils.errors import StoreUnavailableError
from ils.jobs.stores.redis.probe import ProbeResult

EVICTION_SAFE = "noeviction"
#: Pause between the probes that confirm a suspected outage.
CONFIRM_SPACING_S = 0.05

OnUp = Callable[[], Awaitable[None] | None]


class Probe(Protocol):
    """A blocking probe of Redis (run in a thread by the gate)."""

    def __call__(self, *, with_policy: bool = False) -> ProbeResult: ...


class RedisGate:
    """Open when Redis is known to be down, closed (usable) otherwise."""

    def __init__(
        self,
        probe: Probe,
        clock: Clock,
        probe_interval_s: float,
        *,
        failures_to_open: int = 3,
        require_noeviction: bool = False,
    ) -> None:
        self._probe_fn = probe
        self._clock = clock
        self._probe_interval_s = probe_interval_s
        self._failures_to_open = max(failures_to_open, 1)
        self._require_noeviction = require_noeviction
        self._up = False
        self._down_since_ms: int | None = None
        self._reason: str | None = None
        self._policy: str | None = None
        self._probe: asyncio.Task[None] | None = None
        self._confirm: asyncio.Task[None] | None = None
        self._on_up: list[OnUp] = []
        self._background: set[asyncio.Task[None]] = set()
        #: Suspicions raised, and how many of them the probes confirmed (for tests and
        #: metrics: a busy but healthy Redis shows suspicions and no confirmations).
        self.suspicions = 0
        self.confirmed_outages = 0
        self.logger = logging.getLogger(__name__)

    @property
    def up(self) -> bool:
        """Whether producers should try Redis."""
        return self._up

    @property
    def suspect(self) -> bool:
        """Whether a confirmation of a suspected outage is running."""
        return self._confirm is not None and not self._confirm.done()

    @property
    def down_since_ms(self) -> int | None:
        """When Redis was last seen failing (epoch ms), ``None`` while it is up."""
        return self._down_since_ms

    @property
    def reason(self) -> str | None:
        """Why the gate is open, ``None`` while it is up."""
        return None if self._up else self._reason

    @property
    def policy(self) -> str | None:
        """Redis's ``maxmemory-policy`` as last read (``None`` when unknown)."""
        return self._policy

    @property
    def eviction_safe(self) -> bool:
        return self._policy is None or self._policy == EVICTION_SAFE

    def on_up(self, callback: OnUp) -> None:
        """Run ``callback`` each time Redis becomes usable again (not at start-up)."""
        self._on_up.append(callback)

    async def _run_probe(self, *, with_policy: bool = False) -> ProbeResult:
        return await asyncio.to_thread(self._probe_fn, with_policy=with_policy)

    async def check(self) -> bool:
        """Probe now and set the state (start-up uses this); reads the policy."""
        result = await self._run_probe(with_policy=True)
        if result.ok:
            self._policy = result.policy
            if self._usable():
                self._set_up(announce=False)
            else:
                self.mark_down(self._unsafe_reason())
        else:
            self.mark_down(result.error or "not reachable")
        return self._up

    def _usable(self) -> bool:
        return self.eviction_safe or not self._require_noeviction

    def _unsafe_reason(self) -> str:
        return f"maxmemory-policy is {self._policy!r}, not noeviction"

    def report(self, error: BaseException) -> None:
        """A Redis call failed with ``error``: open the gate on certain evidence (the
        connection was refused or could not be made), else confirm by probing."""
        if isinstance(error, StoreUnavailableError) and error.unsent:
            self.mark_down(str(error))
            self.start_probing()
        else:
            self.suspect_outage(type(error).__name__)

    def suspect_outage(self, reason: str) -> None:
        """Start confirming an outage (idempotent while one confirmation runs)."""
        if not self._up or self.suspect:
            return
        self.suspicions += 1
        self._confirm = asyncio.create_task(self._confirm_loop(reason), name="redis-confirm")

    async def _confirm_loop(self, reason: str) -> None:
        failures = 0
        while self._up:
            result = await self._run_probe()
            if result.ok:
                return
            failures += 1
            if result.refused or failures >= self._failures_to_open:
                self.confirmed_outages += 1
                self.mark_down(f"{reason}, then {failures} failed probe(s): {result.error}")
                self.start_probing()
                return
            await asyncio.sleep(CONFIRM_SPACING_S)

    def mark_up(self) -> None:
        """Redis answered: use it again."""
        self._set_up(announce=True)

    def _set_up(self, *, announce: bool) -> None:
        if self._up:
            return
        came_back = self._down_since_ms is not None
        if came_back and announce:
            self.logger.warning("Redis is reachable again: new jobs go to Redis")
        self._up = True
        self._down_since_ms = None
        self._reason = None
        if came_back and announce:
            for callback in self._on_up:
                maybe = callback()
                if maybe is not None:
                    task = asyncio.ensure_future(maybe)
                    self._background.add(task)
                    task.add_done_callback(self._background.discard)

    def mark_down(self, reason: str) -> None:
        if self._up or self._down_since_ms is None:
            self.logger.error(
                "Redis unavailable (%s): jobs go to the local store until it is back", reason
            )
            self._down_since_ms = self._clock.now_ms()
        self._reason = reason
        self._up = False

    def start_probing(self) -> None:
        """Probe in the background while down (idempotent)."""
        if self._probe is None or self._probe.done():
            self._probe = asyncio.create_task(self._probe_loop(), name="redis-probe")

    async def _probe_loop(self) -> None:
        while not self._up:
            await asyncio.sleep(self._probe_interval_s)
            result = await self._run_probe(with_policy=True)
            if not result.ok:
                continue
            self._policy = result.policy
            if self._usable():
                self.mark_up()
            elif self._reason != self._unsafe_reason():
                self.mark_down(self._unsafe_reason())

    async def close(self) -> None:
        tasks = [t for t in (self._probe, self._confirm, *self._background) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

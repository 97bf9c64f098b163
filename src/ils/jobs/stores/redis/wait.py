"""An idle worker's wait on its queue, and the claim Redis runs the moment it ends.

An idle BullMQ worker blocks on the queue's marker (BZPOPMIN) and, once woken, claims
with ``moveToActive``: two round trips between a job being added and it starting,
where a stream consumer (taskiq's ``XREADGROUP``) needs one. Here the claim is written
right behind the wait, on the same connection, in the same write. Redis keeps what a
blocked client sent after its blocking command and runs it as soon as the client is
unblocked, so the claim runs in Redis with no reply in between and both replies come
back together: one round trip from add to claim.

Two things follow from sending the claim before it runs:

- It must be dated when it runs, not when it was sent (up to the wait's timeout
  earlier): its date is the job's ``processedOn`` and decides which delayed jobs are
  due. So it is ``bullmq``'s own ``moveToActive`` with its timestamp argument replaced
  by Redis's clock (``TIME``); nothing else in the script changes.
- A wait cancelled after the claim ran would lose the claim's reply: the job would
  sit locked until its lock expired and the stalled check put it back. So a worker
  that stops does not cancel its wait; it wakes it, by adding a member to a key of its
  own that the wait blocks on beside the marker (:func:`wake_key`). The claim behind
  it still runs, and a job it hands over is run like any other during the stop's grace.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from ils.jobs.stores.redis.bull import BullQueue, unavailable_guard
from ils.jobs.stores.redis.bull_piped import move_to_active_command
from ils.jobs.stores.redis.codec import now_ms
from ils.jobs.stores.redis.pipe import CommandPipe
from ils.jobs.stores.redis.replies import NextJob, next_job

#: Extra time granted to a BZPOPMIN round trip beyond its own server-side timeout.
BLOCK_GRACE_S = 1.0
#: The longest single wait-and-claim; a longer wait is several (its pipe takes a
#: connection as dead after this plus the grace without a reply).
MAX_BLOCK_S = 5.0
#: How long a wake key outlives a wake no wait took (a worker that had just stopped).
WAKE_TTL_MS = 60_000
#: ``moveToActive``'s timestamp argument, replaced by :data:`_DATED_BY_REDIS`.
_TIMESTAMP_ARG = "ARGV[2]"
#: No due time bounds the wait (the caller's timeout does).
_NEVER = 2**62
_DATED_BY_REDIS = (
    "local ilsTime = redis.call('TIME')\n"
    "local ilsNow = ilsTime[1] * 1000 + math.floor(ilsTime[2] / 1000)\n"
)


@dataclass(frozen=True, slots=True)
class Woken:
    """How one wait on the marker ended."""

    #: The popped marker's score (0, or a delayed job's due time); ``None`` when the
    #: wait timed out or the wake key ended it.
    popped_ms: int | None
    #: The worker's wake key ended the wait (it is stopping).
    woken: bool = False
    #: What the claim behind the wait handed over; ``None`` for a plain wait, or when
    #: the claim could not run (its script was not loaded).
    claimed: NextJob | None = None

    def wait_more_until_ms(self) -> int | None:
        """``None`` when the wait is over; else the epoch ms to wait until at most.

        A plain wait is over on a timeout or a ready marker; a future due time keeps
        it waiting until then. A wait whose claim ran is over only with a job, a wake
        or a rate limit (the caller fetches, and learns how long to pause): a claim
        that found nothing has just looked, so the wait goes on (until a delayed job
        it reported comes due), rather than the caller fetching again for nothing.
        """
        if self.woken:
            return None
        now = now_ms()
        if self.claimed is None:
            if self.popped_ms is None or self.popped_ms <= now:
                return None
            return self.popped_ms
        if self.claimed.job_id is not None or self.claimed.limit_until_ms > 0:
            return None
        due = [at for at in (self.popped_ms, self.claimed.delay_until_ms) if at and at > now]
        return min(due, default=_NEVER)


def wake_key(bull: BullQueue, waker: str) -> str:
    """The key that ends ``waker``'s waits on ``bull``'s queue early."""
    return f"{bull.keys['']}ils:wake:{waker}"


def dated_move_to_active(bull: BullQueue) -> str:
    """``bullmq``'s ``moveToActive`` dated by Redis's clock when it runs.

    Fails loudly should a ``bullmq`` upgrade stop passing the timestamp as
    ``ARGV[2]``, rather than claim with a stale date.
    """
    script: str = bull.scripts.commands["moveToActive"].script
    if _TIMESTAMP_ARG not in script:
        raise RuntimeError("bullmq's moveToActive no longer takes its timestamp as ARGV[2]")
    return _DATED_BY_REDIS + script.replace(_TIMESTAMP_ARG, "ilsNow")


async def wait_on_marker(
    step: Callable[[float], Awaitable[Woken]], timeout_ms: int, closed: Callable[[], bool]
) -> Woken | None:
    """Run ``step`` (one wait of at most the given seconds) until it ends the wait or
    ``timeout_ms`` passes; ``None`` when it timed out or the store closed."""
    deadline = now_ms() + max(timeout_ms, 0)
    while not closed():
        remaining_s = (deadline - now_ms()) / 1000
        if remaining_s <= 0:
            return None
        try:
            woken = await step(remaining_s)
        except Exception:
            if closed():
                return None
            raise
        until = woken.wait_more_until_ms()
        if until is None:
            return woken
        deadline = min(deadline, until)
    return None


class MarkerWaits:
    """The waits of one store.

    A plain wait (:meth:`pop`) is a BZPOPMIN on the store's blocking client, bounded
    by ``asyncio.timeout`` (on Python 3.11 ``wait_for`` would run it in a task of its
    own: two more passes of the event loop). A wait-and-claim goes on a
    :class:`CommandPipe` of the queue's own (a blocked command holds its connection),
    whose replies are read as they arrive, without a task either.
    """

    def __init__(
        self, client: Callable[[], Redis], new_pipe: Callable[[list[tuple[str, ...]]], CommandPipe]
    ) -> None:
        self._client = client
        self._new_pipe = new_pipe
        self._pipes: dict[str, CommandPipe] = {}
        #: The dated script and its SHA (the same for every queue), made once.
        self._dated: tuple[str, str] | None = None

    async def pop(self, bull: BullQueue, timeout_s: float) -> Woken:
        """Wait on the marker alone."""
        client = self._client()
        with unavailable_guard():
            async with asyncio.timeout(timeout_s + BLOCK_GRACE_S):
                reply = await client.bzpopmin(bull.keys["marker"], max(timeout_s, 0.001))
        return Woken(None if not reply else int(float(reply[2])))

    async def pop_and_claim(
        self, bull: BullQueue, timeout_s: float, token: str, waker: str
    ) -> Woken:
        """Wait on the marker (and ``waker``'s wake key), at most :data:`MAX_BLOCK_S`;
        claim for ``token`` as soon as the wait ends, in the same round trip."""
        if self._dated is None:
            script = dated_move_to_active(bull)
            # Redis names scripts by SHA1 (EVALSHA): not a use for security.
            self._dated = (script, hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest())
        script, sha = self._dated
        pipe = self._pipes.get(bull.config.key)
        if pipe is None:
            pipe = self._new_pipe([("SCRIPT", "LOAD", script)])
            self._pipes[bull.config.key] = pipe
        claim = move_to_active_command(bull, token, sha=sha)
        wait = ("BZPOPMIN", bull.keys["marker"], wake_key(bull, waker), _seconds(timeout_s))
        replies = pipe.send([wait, claim], _replies)
        try:
            with unavailable_guard():
                popped, claimed = await replies
        except asyncio.CancelledError:
            # The wait may still be blocked in Redis: a new connection for the next.
            pipe.reconnect()
            raise
        if isinstance(claimed, NoScriptError):
            # Scripts flushed: the claim did not run (nothing was claimed; the caller
            # fetches as usual), and a new connection loads the script again.
            pipe.reconnect()
            claimed = None
        return _woken(bull, popped, claimed)

    async def wake(self, client: Redis, bull: BullQueue, waker: str) -> None:
        """End ``waker``'s current (or next) wait on ``bull``'s queue."""
        key = wake_key(bull, waker)
        with unavailable_guard():
            async with client.pipeline(transaction=True) as pipeline:
                pipeline.zadd(key, {"stop": 0})
                pipeline.pexpire(key, WAKE_TTL_MS)
                await pipeline.execute()

    async def drop_unless_to(self, address: tuple[str, int]) -> None:
        """Drop the waits' connections that reach any server but ``address``."""
        for pipe in list(self._pipes.values()):
            await pipe.drop_unless_to(address)

    async def close(self) -> None:
        pipes, self._pipes = self._pipes, {}
        for pipe in pipes.values():
            await pipe.close()


def _replies(outcome: list[Any] | BaseException) -> list[Any]:
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def _woken(bull: BullQueue, popped: Any, claimed: Any) -> Woken:
    """Read the wait's and the claim's replies (``claimed``: ``None`` when the claim
    did not run)."""
    for reply in (popped, claimed):
        if isinstance(reply, BaseException):
            with unavailable_guard():
                raise reply
    marker = bool(popped) and _text(popped[0]) == bull.keys["marker"]
    return Woken(
        int(float(popped[2])) if marker else None,
        woken=bool(popped) and not marker,
        claimed=None if claimed is None else next_job(claimed),
    )


def _seconds(timeout_s: float) -> str:
    return f"{min(max(timeout_s, 0.001), MAX_BLOCK_S):.3f}"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

"""The producers' pipe (``stores.redis.pipe``) against the real Redis of this machine.

Many tasks write on one connection without waiting for each other; each must get its
own reply, and a failure must say whether its command could have run: a command
never written is ``never_sent`` (its job may go to the local store), one written and
not answered is not (its job is held and resolved by id).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from redis import exceptions as redis_errors
from redis.asyncio import Redis

from ils.jobs.outbox import HELD
from ils.jobs.payloads.email import OrderConfirmationEmail
from ils.jobs.stores.redis.bull import make_client, never_sent
from ils.jobs.stores.redis.pipe import CommandPipe, NotSentError
from ils.jobs.system import JobSystem
from ils.settings import Settings
from ils.testing import eventually
from tests.conftest import delete_prefix

#: Far beyond a reply on this machine: a test that waits this long has failed.
BOUND_S = 10.0


def replies(outcome: list[Any] | BaseException) -> list[Any]:
    """A send's replies; the connection's failure or the first error reply raises."""
    if isinstance(outcome, BaseException):
        raise outcome
    for reply in outcome:
        if isinstance(reply, BaseException):
            raise reply
    return outcome


def pipe_for(url: str, *, reply_timeout_s: float = BOUND_S) -> CommandPipe:
    return CommandPipe(
        make_client(url, 500, blocking=True),
        reply_timeout_s=reply_timeout_s,
        connect_timeout_s=0.5,
    )


async def redis_system(tmp_path: Path, redis_url: str, redis_prefix: str) -> JobSystem:
    """A job system in Redis mode whose enqueues are not held on a loaded machine
    (the tests assert where jobs went, not the enqueue budget)."""
    return await JobSystem.open(
        Settings(
            _env_file=None,
            data_dir=tmp_path,
            redis_url=redis_url,
            redis_prefix=redis_prefix,
            redis_enqueue_timeout_ms=5000,
        )
    )


@pytest.fixture
async def pipe(redis_url: str) -> AsyncIterator[CommandPipe]:
    opened = pipe_for(redis_url)
    yield opened
    await opened.close()


async def test_each_of_many_concurrent_senders_gets_its_own_replies(
    pipe: CommandPipe, redis_url: str, redis_prefix: str
) -> None:
    """500 sends from 50 tasks, with a refused command among them: every sender gets
    the replies of its own commands, the error only the one that sent the bad one."""
    key = f"{redis_prefix}:counter"

    async def lane(lane_no: int) -> list[tuple[int, Any]]:
        seen = []
        for i in range(10):
            token = f"{lane_no}-{i}"
            if lane_no == 7 and i == 3:
                bad = pipe.send([("INCR", key), ("HGET", key, "x")], replies)
                with pytest.raises(redis_errors.ResponseError, match="WRONGTYPE"):
                    await asyncio.wait_for(bad, BOUND_S)
                continue
            got = await asyncio.wait_for(pipe.send([("ECHO", token), ("INCR", key)], replies), 2)
            assert got[0] == token
            seen.append((lane_no, got[1]))
        return seen

    try:
        results = await asyncio.gather(*(lane(n) for n in range(50)))
        counts = [count for lane_seen in results for _, count in lane_seen]
        assert len(counts) == 499
        # Every INCR answered its own sender: 500 distinct values, 1..500.
        raw = Redis.from_url(redis_url)
        try:
            assert int(await raw.get(key)) == 500
        finally:
            await raw.aclose()
        assert len(set(counts)) == 499
        assert set(counts) <= set(range(1, 501))
    finally:
        await delete_prefix(redis_url, redis_prefix)


async def test_a_refused_connection_fails_as_never_sent() -> None:
    closed_port = pipe_for("redis://127.0.0.1:1/0")
    try:
        sent = closed_port.send([("PING",)], replies)
        with pytest.raises(NotSentError) as caught:
            await asyncio.wait_for(sent, BOUND_S)
        assert never_sent(caught.value)
    finally:
        await closed_port.close()


async def test_a_reply_later_than_the_bound_fails_what_waits_then_the_pipe_reconnects(
    redis_url: str, redis_prefix: str
) -> None:
    """A BLPOP holds this connection's reply for 2 s: with a 0.3 s bound, it and the
    command written after it fail as possibly run (not ``never_sent``), and the next
    send works on a new connection."""
    pipe = pipe_for(redis_url, reply_timeout_s=0.3)
    try:
        await asyncio.wait_for(pipe.send([("PING",)], replies), BOUND_S)
        blocked = pipe.send([("BLPOP", f"{redis_prefix}:never", 2)], replies)
        behind = pipe.send([("PING",)], replies)
        for future in (blocked, behind):
            with pytest.raises(redis_errors.TimeoutError) as caught:
                await asyncio.wait_for(future, BOUND_S)
            assert not never_sent(caught.value)
        assert await asyncio.wait_for(pipe.send([("ECHO", "again")], replies), BOUND_S) == ["again"]
    finally:
        await pipe.close()


async def test_a_slow_reply_within_the_bound_is_waited_for(
    redis_url: str, redis_prefix: str
) -> None:
    pipe = pipe_for(redis_url, reply_timeout_s=2.0)
    try:
        got = await asyncio.wait_for(
            pipe.send([("BLPOP", f"{redis_prefix}:never", 0.3)], replies), BOUND_S
        )
        assert got == [None]
    finally:
        await pipe.close()


async def test_a_killed_connection_fails_what_waits_and_the_next_send_reconnects(
    pipe: CommandPipe, redis_url: str, redis_prefix: str
) -> None:
    name = f"pipe-{uuid.uuid4().hex[:8]}"
    await asyncio.wait_for(pipe.send([("CLIENT", "SETNAME", name)], replies), BOUND_S)
    waiting = pipe.send([("BLPOP", f"{redis_prefix}:never", 5)], replies)
    raw = Redis.from_url(redis_url)
    try:
        blocked: list[str] = []

        async def in_blpop() -> bool:
            blocked[:] = [
                str(c["id"])
                for c in await raw.client_list()
                if c.get("name") == name and c.get("cmd") == "blpop"
            ]
            return bool(blocked)

        await eventually(in_blpop, BOUND_S)
        await raw.execute_command("CLIENT", "KILL", "ID", blocked[0])
    finally:
        await raw.aclose()
    with pytest.raises(redis_errors.ConnectionError) as caught:
        await asyncio.wait_for(waiting, BOUND_S)
    assert not never_sent(caught.value)
    assert await asyncio.wait_for(pipe.send([("PING",)], replies), BOUND_S) == ["PONG"]


async def test_a_send_after_close_was_never_sent(redis_url: str) -> None:
    pipe = pipe_for(redis_url)
    await pipe.close()
    with pytest.raises(NotSentError):
        await asyncio.wait_for(pipe.send([("PING",)], replies), BOUND_S)


async def test_adds_after_a_script_flush_are_held_then_resolved_and_later_ones_go_through(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    """SCRIPT FLUSH under a live pipe: the add refused with NOSCRIPT did not run; it is
    held and resolved into Redis by id, and the pipe reconnects and loads its scripts,
    so the next enqueue goes straight to Redis."""
    system = await redis_system(tmp_path, redis_url, redis_prefix)
    raw = Redis.from_url(redis_url)
    try:
        assert system.redis is not None
        first = await system.helpers.queue_order_confirmation_email("o1", "u1")
        assert first.store == "redis"
        await raw.script_flush()
        flushed = await system.helpers.queue_order_confirmation_email("o2", "u2")
        assert flushed.store == HELD
        redis = system.redis
        await eventually(_in_redis(redis, flushed.job_id), BOUND_S)
        after = await system.helpers.queue_order_confirmation_email("o3", "u3")
        assert after.store == "redis"
        assert (await system.producer.outbox.held()).count == 0
    finally:
        await raw.aclose()
        await system.close()
        await delete_prefix(redis_url, redis_prefix)


def _in_redis(redis: Any, job_id: str) -> Callable[[], Any]:
    async def check() -> bool:
        return await redis.get_job("email", job_id) is not None

    return check


async def test_a_bulk_add_is_one_transaction_on_the_pipe(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    """300 jobs from one ``enqueue_many``: one MULTI/EXEC (all or none, as BullMQ's
    ``addBulk``), every job in Redis under its own id."""
    system = await redis_system(tmp_path, redis_url, redis_prefix)
    raw = Redis.from_url(redis_url)
    try:
        assert system.redis is not None
        payload = OrderConfirmationEmail(order_id="o", user_id="u")
        options = system.job_types.get("email", "order-confirmation").options_for(payload)
        jobs = [
            ("order-confirmation", OrderConfirmationEmail(order_id=f"o{i}", user_id="u"), options)
            for i in range(300)
        ]
        before = await _calls(raw, "multi")
        refs = await system.producer.enqueue_many("email", jobs)
        assert await _calls(raw, "multi") == before + 1
        assert {ref.store for ref in refs} == {"redis"}
        assert (await system.redis.counts("email"))["waiting"] == 300
        found = await system.redis.get_job("email", refs[123].job_id)
        assert found is not None and found.data["orderId"] == "o123"
    finally:
        await raw.aclose()
        await system.close()
        await delete_prefix(redis_url, redis_prefix)


async def _calls(raw: Redis, command: str) -> int:
    stats = await raw.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))

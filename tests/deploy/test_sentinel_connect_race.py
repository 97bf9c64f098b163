"""A connection being made while the master moves must not end up on the old master.

redis-py asks the sentinels for the master, then opens the socket. A connect that asked
before a ``SENTINEL FAILOVER`` and finishes after the master watch dropped the
connections to the old master is not dropped by it (it had no socket yet), and then
serves the old master until the sentinels demote it, about 8 s later: whatever it wrote
there is thrown away on the resync (jobs added there would run, then be gone).

The test holds a connect between the sentinels' answer and the socket, fails over,
follows the new master as the watch does, then lets the connect go on: the command
must land on the new master.

A connect through the sentinels that a busy event loop held up past the timeout is tried
again rather than failed, as a direct one is (``tests/jobs/test_redis_connect.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from ils.jobs.stores.redis.connect import async_client, move_to_master
from ils.redis_settings import RedisConnection
from tests.deploy.conftest import SentinelFactory
from tests.deploy.servers import SERVICE, SentinelGroup, ask, plain_client
from tests.support.busy_loop import hold_the_loop_soon

pytestmark = [pytest.mark.redis]


def _connection(group: SentinelGroup) -> RedisConnection:
    return RedisConnection(
        sentinels=tuple(("127.0.0.1", port) for port in group.sentinel_ports), service=SERVICE
    )


def _hold_first_answer(pool: Any) -> tuple[asyncio.Event, asyncio.Event]:
    """Make the pool's first master look-up ask the sentinels at once but answer only
    when released; returns (asked, release)."""
    asked, release = asyncio.Event(), asyncio.Event()
    manager = pool.sentinel_manager
    discover: Callable[[str], Awaitable[tuple[str, int]]] = manager.discover_master
    calls = 0

    async def held(service: str) -> tuple[str, int]:
        nonlocal calls
        calls += 1
        answer = await discover(service)
        if calls == 1:
            asked.set()
            await release.wait()
        return answer

    manager.discover_master = held
    return asked, release


async def test_a_connect_under_way_when_the_master_moves_lands_on_the_new_master(
    make_sentinels: SentinelFactory,
) -> None:
    group = make_sentinels(sentinels=1, quorum=1)
    old, new = group.master_port, group.replica_port
    client = async_client(_connection(group), connect_timeout_s=2, socket_timeout_s=2)
    try:
        asked, release = _hold_first_answer(client.connection_pool)
        write = asyncio.create_task(client.set("ilstest:written", "1"))
        await asyncio.wait_for(asked.wait(), 10)  # the sentinels named the old master

        with plain_client(group.sentinel_ports[0]) as sentinel:
            assert sentinel.execute_command("SENTINEL", "FAILOVER", SERVICE)
        await asyncio.to_thread(group.wait_failed_over)
        await asyncio.to_thread(group.wait_switched)
        await move_to_master(client, ("127.0.0.1", new))  # what the master watch does
        release.set()
        await asyncio.wait_for(write, 10)

        assert group.role(old) == "master", "the old master still takes writes"
        assert ask(new, lambda c: c.get("ilstest:written")) == "1"
        assert ask(old, lambda c: c.get("ilstest:written")) is None
    finally:
        await client.aclose()


async def test_a_connect_through_the_sentinels_the_loop_held_up_still_gets_through(
    make_sentinels: SentinelFactory,
) -> None:
    group = make_sentinels(sentinels=1, quorum=1)
    client = async_client(_connection(group), connect_timeout_s=0.2, socket_timeout_s=5)
    try:
        hold_the_loop_soon(0.4)
        assert await client.ping()
    finally:
        await client.aclose()

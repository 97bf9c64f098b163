"""A busy event loop must not make a healthy Redis look unreachable at connect time.

The connect timeout runs on the event loop's clock. When another task holds the loop
for longer than the timeout, the timer and the finished handshake are seen in the same
turn of the loop and the timer wins: the connect fails although Redis answered at once
(CI saw ``Timeout connecting to server`` against the local Redis on a loaded machine).
Opening the socket is tried once more when it timed out; a server that never answers
still fails, and one that accepts the connection but says nothing is not asked twice.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
import redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ils.errors import StoreUnavailableError
from ils.jobs.catalogue import Catalogue
from ils.jobs.stores.redis.connect import async_client
from ils.jobs.stores.redis.store import RedisJobStore
from ils.testing import eventually
from tests.conftest import delete_prefix
from tests.support.busy_loop import hold_the_loop_soon
from tests.support.silent_server import SilentServer
from tests.support.stores import Q, job, unlimited_catalogue

pytestmark = [pytest.mark.redis]

#: The connect timeout of these tests, and how long the loop is held: longer.
TIMEOUT_MS = 200
HOLD_S = 0.4


@pytest.fixture
def mute_server() -> Iterator[SilentServer]:
    """A server that accepts connections and never says a word."""
    server = SilentServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port whose listen queue is full: the kernel drops further SYNs, so a connect
    there never completes (a Redis host that does not answer)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers: list[socket.socket] = []
    try:
        for _ in range(4):  # a backlog of 0 still holds one or two handshakes
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        yield port
    finally:
        for filler in fillers:
            filler.close()
        server.close()


async def test_a_command_whose_connect_the_loop_held_up_still_reaches_redis(
    redis_url: str,
) -> None:
    client = async_client(redis_url, connect_timeout_s=TIMEOUT_MS / 1000, socket_timeout_s=5)
    try:
        hold_the_loop_soon(HOLD_S)
        assert await client.ping()
    finally:
        await client.aclose()


async def test_a_store_call_whose_connect_the_loop_held_up_succeeds(
    redis_url: str, redis_prefix: str
) -> None:
    catalogue: Catalogue = unlimited_catalogue(Q)
    store = RedisJobStore(redis_url, catalogue, prefix=redis_prefix, connect_timeout_ms=TIMEOUT_MS)
    try:
        job_id = await store.add(Q, job(1))
        hold_the_loop_soon(HOLD_S)
        record = await store.get_job(Q, job_id)
        assert record is not None and record.id == job_id
    finally:
        await store.close()
        await delete_prefix(redis_url, redis_prefix)


async def test_a_server_that_never_answers_still_fails_after_two_timeouts(
    silent_server: int,
) -> None:
    client = async_client(
        f"redis://127.0.0.1:{silent_server}/0",
        connect_timeout_s=TIMEOUT_MS / 1000,
        socket_timeout_s=5,
    )
    started = time.monotonic()
    try:
        with pytest.raises(redis.TimeoutError):
            await client.ping()
    finally:
        await client.aclose()
    assert time.monotonic() - started >= 2 * TIMEOUT_MS / 1000


async def test_a_server_that_accepts_and_says_nothing_is_not_asked_twice(
    mute_server: SilentServer,
) -> None:
    """Only opening the socket is retried: the first command of the connection timed
    out on a server that took it, and asking again would only double the wait."""
    client = async_client(
        f"redis://127.0.0.1:{mute_server.port}/0",
        connect_timeout_s=TIMEOUT_MS / 1000,
        socket_timeout_s=TIMEOUT_MS / 1000,
        retry=Retry(NoBackoff(), 0),
    )
    try:
        with pytest.raises(redis.TimeoutError):
            await client.ping()
    finally:
        await client.aclose()
    await eventually(lambda: len(mute_server.conns) > 0, 10)  # its thread may lag behind
    assert len(mute_server.conns) == 1


async def test_a_store_whose_redis_never_answers_reports_it_unavailable(
    silent_server: int,
) -> None:
    store = RedisJobStore(
        f"redis://127.0.0.1:{silent_server}/0",
        unlimited_catalogue(Q),
        connect_timeout_ms=TIMEOUT_MS,
    )
    try:
        with pytest.raises(StoreUnavailableError, match="Timeout connecting"):
            await store.get_job(Q, "job-1")
    finally:
        await store.close()

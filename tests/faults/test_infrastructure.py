"""The fault-injection tools really inject their faults (and clean up after themselves).

Against the machine's Redis through :class:`FaultProxy` with redis-py's asyncio client,
a private ``redis-server`` for crashes, a recording SMTP server, busy processes.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from email.message import EmailMessage

import aiosmtplib
import pytest
import redis.exceptions
from redis.asyncio import Redis

from tests.conftest import free_port
from tests.faults.conftest import HogsFactory, ProxyFactory, RedisFactory
from tests.faults.load import LoopStalls, frozen
from tests.faults.proxy import FaultProxy
from tests.faults.redis_server import PrivateRedis, redis_ping
from tests.faults.smtp import SmtpRecorder
from tests.faults.wait import eventually, still


async def timed_ping(client: Redis) -> float:
    """Seconds one PING took."""
    start = time.monotonic()
    assert await client.ping()
    return time.monotonic() - start


def proxy_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("FaultProxy")]


# ---------------------------------------------------------------------- the proxy


@pytest.mark.redis
async def test_forwards_traffic_and_counts_it(
    redis_proxy: FaultProxy, make_redis: RedisFactory
) -> None:
    client = await make_redis(redis_proxy.url)
    key = f"faults:{uuid.uuid4().hex}"
    value = os.urandom(300_000)
    try:
        await client.set(key, value)
        assert await client.get(key) == value
    finally:
        await client.delete(key)
    stats = redis_proxy.stats
    assert stats.accepted == 1
    assert stats.active == 1
    assert stats.bytes_up > 300_000
    assert stats.bytes_down > 300_000
    assert stats.held_up == stats.held_down == 0


@pytest.mark.redis
async def test_stop_leaves_no_thread_or_listener(redis_url: str) -> None:
    before = len(proxy_threads())
    async with FaultProxy(redis_url) as proxy:
        port = proxy.port
        assert len(proxy_threads()) == before + 1
        assert redis_ping(port)
    assert len(proxy_threads()) == before
    assert not redis_ping(port)


@pytest.mark.redis
async def test_latency_adds_the_delay_of_each_direction(
    redis_proxy: FaultProxy, make_redis: RedisFactory
) -> None:
    client = await make_redis(redis_proxy.url)
    await client.ping()  # connected (the handshake is not what we measure)

    redis_proxy.set_latency(up_ms=120, down_ms=80)
    assert await timed_ping(client) >= 0.2
    redis_proxy.set_latency(down_ms=150)
    assert await timed_ping(client) >= 0.15

    redis_proxy.set_latency()
    assert await timed_ping(client) < 0.15


@pytest.mark.redis
async def test_pause_holds_both_directions_until_resume(
    redis_proxy: FaultProxy, make_redis: RedisFactory
) -> None:
    client = await make_redis(redis_proxy.url, timeout=10)
    await client.ping()

    # Client to server: the PING waits in the proxy.
    redis_proxy.pause()
    ping = asyncio.ensure_future(client.ping())
    await eventually(lambda: redis_proxy.stats.held_up > 0)
    await still(ping.done)
    assert redis_proxy.stats.active == 1  # nothing closed
    redis_proxy.resume()
    assert await asyncio.wait_for(ping, 5)

    # Server to client: the reply is held by latency, then by a pause that outlasts it.
    redis_proxy.set_latency(down_ms=300)
    ping = asyncio.ensure_future(client.ping())
    await eventually(lambda: redis_proxy.stats.held_down > 0)
    redis_proxy.pause()
    redis_proxy.set_latency()
    await still(ping.done)
    redis_proxy.resume()
    assert await asyncio.wait_for(ping, 5)


@pytest.mark.redis
async def test_drop_resets_both_sides(
    redis_proxy: FaultProxy, make_redis: RedisFactory, redis_url: str
) -> None:
    name = f"faults-{uuid.uuid4().hex[:8]}"
    client = await make_redis(redis_proxy.url, client_name=name)
    direct = await make_redis(redis_url)
    await client.ping()

    async def server_connections() -> int:
        return sum(c.get("name") == name for c in await direct.client_list())

    assert await server_connections() == 1
    assert redis_proxy.drop_connections() == 1
    assert redis_proxy.stats.dropped == 1

    async def server_lost_it() -> bool:
        return await server_connections() == 0

    await eventually(server_lost_it)

    # redis-py checks an idle connection as it takes it from the pool, and reconnects.
    assert await client.ping()
    assert redis_proxy.stats.accepted == 2


async def drop_in_flight(proxy: FaultProxy, client: Redis) -> asyncio.Future[bool]:
    """A PING that the proxy drops after the client sent it (the reply never comes)."""
    await client.ping()
    proxy.pause()
    ping = asyncio.ensure_future(client.ping())
    await eventually(lambda: proxy.stats.held_up > 0)
    proxy.drop_connections()
    proxy.resume()
    return ping


@pytest.mark.redis
async def test_drop_fails_the_command_in_flight_unless_retried(
    redis_proxy: FaultProxy, make_redis: RedisFactory
) -> None:
    client = await make_redis(redis_proxy.url)
    with pytest.raises(redis.exceptions.ConnectionError):
        await asyncio.wait_for(await drop_in_flight(redis_proxy, client), 5)

    retrying = await make_redis(redis_proxy.url, retries=1)
    accepted = redis_proxy.stats.accepted
    assert await asyncio.wait_for(await drop_in_flight(redis_proxy, retrying), 5)
    assert redis_proxy.stats.accepted == accepted + 2  # its first and its retry's


@pytest.mark.redis
async def test_drop_sends_an_rst(redis_proxy: FaultProxy) -> None:
    reader, writer = await asyncio.open_connection(*redis_proxy.address)
    try:
        writer.write(b"PING\r\n")
        assert await asyncio.wait_for(reader.readline(), 5) == b"+PONG\r\n"
        redis_proxy.drop_connections()
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(reader.read(10), 5)
    finally:
        writer.close()


@pytest.mark.redis
async def test_blackhole_times_out_and_heal_delivers_what_was_held(
    redis_proxy: FaultProxy, make_redis: RedisFactory, redis_url: str
) -> None:
    client = await make_redis(redis_proxy.url, timeout=0.3)
    direct = await make_redis(redis_url)
    key = f"faults:{uuid.uuid4().hex}"
    await client.ping()
    try:
        redis_proxy.blackhole(True)
        # An ambiguous command: the client gives up, the partition heals, it runs. (It
        # must go out on a connection made before: a new one would time out in
        # redis-py's handshake, CLIENT SETINFO, before sending the INCR.)
        with pytest.raises(redis.exceptions.TimeoutError):
            await client.incr(key)
        assert await direct.get(key) is None
        with pytest.raises(redis.exceptions.TimeoutError):
            await client.ping()
        redis_proxy.pause()
        redis_proxy.resume()  # a resume does not heal a partition
        with pytest.raises(redis.exceptions.TimeoutError):
            await client.ping()

        redis_proxy.blackhole(False)

        async def incremented() -> bool:
            return await direct.get(key) == b"1"

        await eventually(incremented, message="the held INCR never ran")
        assert await client.ping()
    finally:
        await direct.delete(key)


@pytest.mark.redis
async def test_refuse_gives_connection_refused(
    redis_proxy: FaultProxy, make_redis: RedisFactory
) -> None:
    existing = await make_redis(redis_proxy.url)
    await existing.ping()

    redis_proxy.refuse(True)
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(*redis_proxy.address)
    newcomer = await make_redis(redis_proxy.url)
    with pytest.raises(redis.exceptions.ConnectionError) as refused:
        await newcomer.ping()
    assert "refused" in str(refused.value).lower() or "111" in str(refused.value)
    assert await existing.ping()  # kept

    redis_proxy.refuse(False)  # same port again
    assert await newcomer.ping()

    redis_proxy.refuse(True, drop_existing=True)
    with pytest.raises(redis.exceptions.ConnectionError):
        await existing.ping()
    redis_proxy.refuse(False)


@pytest.mark.redis
async def test_periodic_pause_stalls_commands_periodically(
    redis_proxy: FaultProxy, make_redis: RedisFactory
) -> None:
    client = await make_redis(redis_proxy.url)
    await client.ping()
    redis_proxy.periodic_pause(every_s=0.25, for_ms=120)
    durations: list[float] = []

    async def three_pauses() -> bool:
        durations.append(await timed_ping(client))
        return redis_proxy.stats.periodic_pauses >= 3

    await eventually(three_pauses, timeout=5, interval=0.005)
    stalled = [d for d in durations if d >= 0.06]
    assert len(stalled) >= 2, durations
    assert len(stalled) < len(durations) / 2, durations  # between pauses it flows

    redis_proxy.stop_periodic_pause()
    pauses = redis_proxy.stats.periodic_pauses
    await still(lambda: redis_proxy.stats.periodic_pauses > pauses, for_s=0.4)
    assert await timed_ping(client) < 0.1


async def test_unreachable_upstream_resets_the_client(
    make_proxy: ProxyFactory, make_redis: RedisFactory
) -> None:
    proxy = make_proxy(f"redis://127.0.0.1:{free_port()}/0")
    client = await make_redis(proxy.url)
    with pytest.raises(redis.exceptions.ConnectionError):
        await client.ping()
    assert proxy.stats.upstream_failures == 1


@pytest.mark.redis
def test_control_calls_work_from_other_threads(redis_proxy: FaultProxy) -> None:
    calls = [redis_proxy.pause, redis_proxy.resume, lambda: redis_proxy.set_latency(up_ms=1)]
    threads = [threading.Thread(target=call) for call in calls * 5]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    redis_proxy.heal()
    assert redis_ping(redis_proxy.port)


# ---------------------------------------------------------------------- private Redis


@pytest.mark.redis
async def test_kill9_and_restart_keep_what_was_written(
    private_redis: PrivateRedis, make_redis: RedisFactory
) -> None:
    client = await make_redis(private_redis.url, timeout=1, retries=1)
    for i in range(100):
        await client.set(f"k{i}", i)
    pid = private_redis.pid

    private_redis.kill9()
    assert not private_redis.running
    with pytest.raises(redis.exceptions.ConnectionError):
        await client.ping()

    private_redis.restart()
    assert private_redis.pid != pid
    assert await client.mget([f"k{i}" for i in range(100)]) == [str(i).encode() for i in range(100)]


@pytest.mark.redis
async def test_sigstop_freezes_the_private_redis(
    private_redis: PrivateRedis, make_redis: RedisFactory
) -> None:
    client = await make_redis(private_redis.url, timeout=0.3)
    await client.ping()
    assert private_redis.pid is not None
    with frozen(private_redis.pid), pytest.raises(redis.exceptions.TimeoutError):
        await client.ping()
    assert await client.ping()


# ---------------------------------------------------------------------- load


async def test_cpu_hogs_burn_cpu_and_die(cpu_hogs: HogsFactory) -> None:
    hogs = cpu_hogs(2)
    pids = hogs.pids
    await eventually(hogs.all_busy)
    hogs.stop()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


async def test_loop_stalls_block_the_event_loop() -> None:
    lags: list[float] = []
    async with LoopStalls(every_s=0.1, for_ms=60) as stalls:

        async def two_stalls() -> bool:
            start = time.monotonic()
            await asyncio.sleep(0.005)
            lags.append(time.monotonic() - start)
            return stalls.stalls >= 2

        await eventually(two_stalls, interval=0)
    assert max(lags) >= 0.05


# ---------------------------------------------------------------------- SMTP


def mail(message_id: str, job: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "lab@example.com"
    message["To"] = "practice@example.com"
    message["Subject"] = "Order"
    message["Message-ID"] = message_id
    message["X-ILS-Job"] = job
    message.set_content("Your order")
    return message


async def test_smtp_recorder_counts_duplicates(smtp_recorder: SmtpRecorder) -> None:
    async def send(message: EmailMessage, port: int = smtp_recorder.port) -> None:
        await aiosmtplib.send(message, hostname="127.0.0.1", port=port, timeout=5)

    await send(mail("<a@ils>", "email/order/1"))
    await send(mail("<a@ils>", "email/order/1"))
    await send(mail("<b@ils>", "email/order/2"))
    await smtp_recorder.wait_for_count(3)
    assert smtp_recorder.duplicates() == {"<a@ils>": 2}
    assert smtp_recorder.by_job() == {"email/order/1": 2, "email/order/2": 1}

    # Stored, then the connection drops before the reply: the sender cannot tell.
    smtp_recorder.hang_up_after_data = 1
    with pytest.raises(aiosmtplib.SMTPServerDisconnected):
        await send(mail("<c@ils>", "email/order/3"))
    assert smtp_recorder.by_message_id()["<c@ils>"] == 1

    smtp_recorder.data_replies.append("451 4.3.0 Try again later")
    with pytest.raises(aiosmtplib.SMTPDataError):
        await send(mail("<d@ils>", "email/order/4"))
    assert smtp_recorder.by_message_id()["<d@ils>"] == 0


async def test_smtp_through_the_proxy(
    smtp_recorder: SmtpRecorder, make_proxy: ProxyFactory
) -> None:
    proxy = make_proxy(smtp_recorder.url)
    await aiosmtplib.send(mail("<p@ils>", "email/order/9"), hostname="127.0.0.1", port=proxy.port)
    assert smtp_recorder.by_message_id() == {"<p@ils>": 1}
    assert proxy.stats.bytes_up > 0

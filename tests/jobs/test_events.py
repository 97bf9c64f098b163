"""The event bus: in-process delivery, Redis pub/sub across buses, and an outage."""

from __future__ import annotations

import asyncio

from ils.jobs.events import LocalEventBus, RedisEventBus, Subscription
from tests.conftest import delete_prefix


async def _subscribed(bus: RedisEventBus, subscription: Subscription, probe: str) -> None:
    """Publish ``probe`` until the listener has subscribed and delivers it."""
    for _ in range(100):
        await bus.publish(subscription.channel, probe)
        if await subscription.get(0.05) == probe:
            subscription.drain()
            return
    raise AssertionError("the listener never subscribed")


async def test_local_bus_delivers_to_the_channels_subscribers_only() -> None:
    bus = LocalEventBus()
    async with bus.subscribe("a") as first, bus.subscribe("a") as second, bus.subscribe("b") as b:
        await bus.publish("a", "user-1")
        assert await first.get(1) == "user-1"
        assert await second.get(1) == "user-1"
        assert await b.get(0.05) is None
    await bus.publish("a", "nobody listens")  # no subscriber: nothing happens


async def test_redis_bus_reaches_another_process_bus(redis_url: str, redis_prefix: str) -> None:
    publisher = RedisEventBus(redis_url, prefix=redis_prefix)
    listener = RedisEventBus(redis_url, prefix=redis_prefix)
    other_prefix = RedisEventBus(redis_url, prefix=f"{redis_prefix}-other")
    try:
        async with (
            listener.subscribe("notifications") as signals,
            other_prefix.subscribe("notifications") as elsewhere,
        ):
            await _subscribed(publisher, signals, "probe")
            elsewhere.drain()
            await publisher.publish("notifications", "user-42")
            assert await signals.get(2) == "user-42"
            # Another deployment's prefix is another bus.
            assert await elsewhere.get(0.2) is None
    finally:
        for bus in (publisher, listener, other_prefix):
            await bus.close()
        await delete_prefix(redis_url, redis_prefix)


async def test_redis_unreachable_still_delivers_inside_the_process() -> None:
    # Nothing listens on port 1: publishing fails fast and falls back to this process.
    bus = RedisEventBus("redis://127.0.0.1:1/0", prefix="x", timeout_ms=100, retry_s=0.05)
    try:
        async with bus.subscribe("notifications") as signals:
            await asyncio.wait_for(bus.publish("notifications", "user-7"), 2)
            assert await signals.get(1) == "user-7"
    finally:
        await asyncio.wait_for(bus.close(), 5)


async def test_a_slow_subscriber_keeps_the_newest_signals() -> None:
    bus = LocalEventBus()
    async with bus.subscribe("a") as slow:
        for n in range(1100):
            await bus.publish("a", str(n))
        waiting = slow.drain()
    assert len(waiting) == 1000
    assert waiting[0] == "100" and waiting[-1] == "1099"

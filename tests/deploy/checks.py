"""Checks shared by the deployment tests."""

from __future__ import annotations

import redis.asyncio as aioredis

from ils.jobs.system import JobSystem
from tests.faults.wait import eventually


async def signal_round_trip(system: JobSystem, publisher: aioredis.Redis) -> None:
    """The system's event bus subscribes through its own connection and hears a signal
    that ``publisher`` (another client of the same Redis) sends. The bus's own publish
    would prove nothing: on an error it delivers inside the process."""
    channel = f"{system.settings.redis_prefix}:events:deploy-check"
    async with system.events.subscribe("deploy-check") as subscription:

        async def subscribed() -> bool:
            counts = await publisher.pubsub_numsub(channel)
            return bool(counts and counts[0][1] > 0)

        await eventually(subscribed, timeout=5)
        await publisher.publish(channel, "hello")
        assert await subscription.get(5) == "hello"

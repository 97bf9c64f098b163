"""Signals between processes: "something new for user X", not the thing itself.

A worker that has stored a record a browser is waiting for (a notification) publishes
a short signal after its commit; a web process holding that browser's stream wakes
and reads the record from the database. Signals carry identifiers only (they pass
through Redis), and losing one costs latency, never data: subscribers also look at
the database on a slow timer, so a signal dropped while Redis restarts (pub/sub is
fire-and-forget) or published by a process they cannot hear is picked up anyway.

* :class:`LocalEventBus`: subscribers of this process only (local mode).
* :class:`RedisEventBus`: Redis pub/sub, every process (Redis mode); while Redis is
  unreachable it still delivers inside the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ils.jobs.stores.redis.connect import async_client, move_to_master
from ils.redis_settings import RedisConnection

#: Signals waiting for a slow subscriber before the oldest are dropped (the
#: subscriber's timer catches up from the database).
SUBSCRIBER_BACKLOG = 1000


class EventBus(Protocol):
    """Publish short text signals on named channels; subscribe to them."""

    async def publish(self, channel: str, message: str) -> None:
        """Send ``message`` to the channel's subscribers (best effort)."""
        ...

    def subscribe(self, channel: str) -> contextlib.AbstractAsyncContextManager[Subscription]:
        """A subscription that receives the channel's messages until the block ends."""
        ...

    async def close(self) -> None:
        """Stop listening; subscriptions end."""
        ...


class Subscription:
    """Messages of one channel for one subscriber, in arrival order."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self._messages: asyncio.Queue[str] = asyncio.Queue(SUBSCRIBER_BACKLOG)

    def deliver(self, message: str) -> None:
        """Queue ``message``; when the backlog is full, drop the oldest."""
        if self._messages.full():
            self._messages.get_nowait()
        self._messages.put_nowait(message)

    async def get(self, timeout_s: float | None = None) -> str | None:
        """The next message, or ``None`` after ``timeout_s`` without one."""
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel that
        # arrives as the message does, and the reader's loop went on (test_lost_cancel).
        try:
            async with asyncio.timeout(timeout_s):
                return await self._messages.get()
        except TimeoutError:
            return None

    def drain(self) -> list[str]:
        """Every message already waiting, without waiting for more."""
        messages = []
        while not self._messages.empty():
            messages.append(self._messages.get_nowait())
        return messages


class _Subscribers:
    """This process's subscriptions by channel."""

    def __init__(self) -> None:
        self._by_channel: dict[str, set[Subscription]] = {}

    def add(self, subscription: Subscription) -> None:
        self._by_channel.setdefault(subscription.channel, set()).add(subscription)

    def remove(self, subscription: Subscription) -> None:
        subscribers = self._by_channel.get(subscription.channel)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._by_channel[subscription.channel]

    def deliver(self, channel: str, message: str) -> None:
        for subscription in self._by_channel.get(channel, ()):
            subscription.deliver(message)

    def channels(self) -> set[str]:
        return set(self._by_channel)


class LocalEventBus:
    """In-process delivery: for local mode, where every listener shares the process."""

    def __init__(self) -> None:
        self._subscribers = _Subscribers()

    async def publish(self, channel: str, message: str) -> None:
        self._subscribers.deliver(channel, message)

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        subscription = Subscription(channel)
        self._subscribers.add(subscription)
        try:
            yield subscription
        finally:
            self._subscribers.remove(subscription)

    async def close(self) -> None:
        return None


class RedisEventBus:
    """Redis pub/sub, shared by every process on the same Redis.

    One listener task per process holds one pub/sub connection for all of its
    subscriptions, started with the first subscription and reconnecting after
    errors. A publish that cannot reach Redis is delivered inside the process (so
    in-process workers still wake their browsers during an outage).
    """

    def __init__(
        self,
        url: RedisConnection | str,
        *,
        prefix: str,
        timeout_ms: int = 500,
        retry_s: float = 1.0,
        client_factory: Callable[[], aioredis.Redis] | None = None,
    ) -> None:
        self._prefix = prefix
        self._retry_s = retry_s
        timeout = timeout_ms / 1000
        self._client = (client_factory or (lambda: _client(url, timeout)))()
        # The listener blocks on its connection: a client of its own, no read timeout.
        self._listener_client = (client_factory or (lambda: _client(url, None)))()
        self._subscribers = _Subscribers()
        self._listener: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._logger = logging.getLogger(__name__)

    def _key(self, channel: str) -> str:
        return f"{self._prefix}:events:{channel}"

    async def publish(self, channel: str, message: str) -> None:
        try:
            await self._client.publish(self._key(channel), message)
        except (RedisError, OSError):
            # The subscribers' timer will find the record; deliver here at once.
            self._subscribers.deliver(channel, message)

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        subscription = Subscription(channel)
        self._subscribers.add(subscription)
        self._changed.set()
        if self._listener is None or self._listener.done():
            self._listener = asyncio.create_task(self._listen(), name="ils-events")
        try:
            yield subscription
        finally:
            self._subscribers.remove(subscription)
            self._changed.set()

    async def _listen(self) -> None:
        """Keep a pub/sub connection subscribed to the channels this process wants."""
        while True:
            try:
                await self._listen_once()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                self._logger.warning("event listener lost Redis (%s); retrying", type(exc).__name__)
                await asyncio.sleep(self._retry_s)

    async def _listen_once(self) -> None:
        pubsub = self._listener_client.pubsub(ignore_subscribe_messages=True)
        subscribed: set[str] = set()
        try:
            while True:
                wanted = {self._key(channel) for channel in self._subscribers.channels()}
                self._changed.clear()
                if wanted - subscribed:
                    await pubsub.subscribe(*(wanted - subscribed))
                if subscribed - wanted:
                    await pubsub.unsubscribe(*(subscribed - wanted))
                subscribed = wanted
                if not subscribed:
                    await self._changed.wait()
                    continue
                message = await pubsub.get_message(timeout=0.2)
                if message is not None and message.get("type") == "message":
                    key = _text(message["channel"])
                    channel = key.removeprefix(f"{self._prefix}:events:")
                    self._subscribers.deliver(channel, _text(message["data"]))
        finally:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()

    async def follow_master(self, master: tuple[str, int]) -> None:
        """The sentinels named a new master (``redis.master_watch``): publish and listen
        there from now on. The listener starts again at once rather than after its
        retry pause; a message published in between may be missed (the subscribers'
        timers find what it announced)."""
        await move_to_master(self._client, master)
        listening = self._listener is not None and not self._listener.done()
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        await move_to_master(self._listener_client, master)
        if listening:
            self._listener = asyncio.create_task(self._listen(), name="ils-events")

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
            self._listener = None
        await self._client.aclose()
        await self._listener_client.aclose()


def _client(connection: RedisConnection | str, timeout_s: float | None) -> aioredis.Redis:
    return async_client(connection, socket_timeout_s=timeout_s, connect_timeout_s=timeout_s or 1.0)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value

"""One Redis connection that every add, fetch and completion of a process is written to
at once.

Why: an add through redis-py's client takes a pooled connection, writes under a
``wait_for`` (a task of its own on Python 3.11) and waits for its reply before the
connection serves anyone else: about nine passes of the event loop per add, each an
``epoll`` call, and a burst of adds from many requests is as many round trips as adds.
Here :meth:`CommandPipe.send` writes the commands at once, without waiting, and
returns a future of their replies. The replies are parsed (by hiredis) as the socket
delivers them, in the transport's own callback, and each caller's future is resolved
there: no reader task, so a reply reaches its caller one pass of the event loop
sooner. A burst goes out as one write and comes back as one read, and a single add
costs the write and three loop passes (measured with cProfile; four with a reader
task).

The connection itself is made by redis-py (URL, TLS, AUTH, Sentinel, as for every
other client); once it is up, its transport is handed to :class:`_Replies` in place
of the stream reader redis-py reads through.

What stays as before, and why it is safe:

- A command is written once and never resent. When the connection fails or a reply
  is late, every command waiting for a reply fails with the error (Redis may have run
  it: the caller treats it as ambiguous), and the next :meth:`send` connects again.
- Nothing is written before the connection is made. A connect that fails (refused,
  no master from the sentinels, timed out) fails the commands that were waiting for
  it with :class:`NotSentError` (the connect error as its cause), which ``never_sent``
  recognises: they never reached Redis.
- :meth:`send` never waits. A caller that must not wait long (the enqueue budget) puts
  its own bound on the future; the pipe's own bound is ``reply_timeout_s`` without any
  reply while commands wait, after which the connection is taken as dead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import hiredis
from redis import exceptions as redis_errors
from redis._parsers.base import BaseParser
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection

from ils.jobs.stores.redis.connect import connection_address, move_to_master

#: Turns a send's replies (error replies included, as exception objects) or the
#: connection's failure into the send's result; what it raises fails the future.
Finish = Callable[[list[Any] | BaseException], Any]


@dataclass(slots=True)
class _Waiting:
    """Commands written (or to be written) by one :meth:`CommandPipe.send`."""

    commands: Sequence[Sequence[Any]]
    finish: Finish
    future: asyncio.Future[Any]
    replies: list[Any] = field(default_factory=list)

    def settle(self, outcome: list[Any] | BaseException) -> None:
        if self.future.done():
            return
        try:
            self.future.set_result(self.finish(outcome))
        except Exception as exc:  # the caller's error, raised where it awaits
            self.future.set_exception(exc)


class CommandPipe:
    """Commands of many tasks on one connection, replies handed back in order.

    ``client`` makes the connection (URL, TLS, credentials, Sentinel, as every other
    client); it must have no socket timeout and no retry (``make_client(blocking=True)``),
    since the pipe bounds its own reads and never resends. ``on_connect``: commands
    sent first on every new connection (loading the scripts the callers run by SHA).
    """

    def __init__(
        self,
        client: Redis,
        *,
        reply_timeout_s: float,
        connect_timeout_s: float,
        on_connect: Sequence[Sequence[Any]] = (),
    ) -> None:
        self._client = client
        self._reply_timeout_s = reply_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._on_connect = list(on_connect)
        self._conn: AbstractConnection | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._unsent: list[_Waiting] = []
        self._in_flight: deque[_Waiting] = deque()
        self._watchdog: asyncio.TimerHandle | None = None
        self._replies_read = 0
        self._closed = False
        #: Connections being given up (kept referenced until done; ``close`` awaits them).
        self._drops: set[asyncio.Task[None]] = set()

    def send(self, commands: Sequence[Sequence[Any]], finish: Finish) -> asyncio.Future[Any]:
        """Write ``commands`` (at once when connected, else as soon as the connection
        is made) and return the future of ``finish`` applied to their replies."""
        waiting = _Waiting(commands, finish, asyncio.get_running_loop().create_future())
        if self._closed:
            waiting.settle(NotSentError("not sent: the Redis store is closed"))
        elif self._conn is not None:
            self._write([waiting])
        else:
            self._unsent.append(waiting)
            if self._connecting is None:
                self._connecting = asyncio.create_task(self._connect(), name="redis-pipe-connect")
        return waiting.future

    async def close(self) -> None:
        """Fail whatever waits, drop the connection and close the client."""
        self._closed = True
        if self._connecting is not None:
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connecting
        self._break(redis_errors.ConnectionError("the Redis store was closed"))
        drops, self._drops = self._drops, set()
        await asyncio.gather(*drops, return_exceptions=True)
        await self._client.aclose()

    def reconnect(self) -> None:
        """Drop the connection (a reply showed it is not fit for use: scripts flushed);
        what waits on it fails as ambiguous, the next send connects afresh."""
        self._break(redis_errors.ConnectionError("connection dropped to be made again"))

    async def drop_unless_to(self, address: tuple[str, int]) -> None:
        """Drop the connection if it reaches any server but ``address`` (the master
        moved: ``redis.master_watch``); a connection already there is kept, so a claim
        in flight on the new master keeps its reply. A connection being made meanwhile
        lands on ``address`` too (``connect.move_to_master``)."""
        conn = self._conn
        if conn is not None and connection_address(conn) != address:
            self._break(redis_errors.ConnectionError("the Redis master moved"))
        await move_to_master(self._client, address)

    # -- internals ----------------------------------------------------------------------

    async def _connect(self) -> None:
        """Connect, then write what waited; on failure fail it with the connect error."""
        pool = self._client.connection_pool
        conn: AbstractConnection | None = None
        try:
            async with asyncio.timeout(self._connect_timeout_s + self._reply_timeout_s):
                # Untyped in redis-py: a connection of the pool's class.
                conn = await pool.get_connection()  # type: ignore[no-untyped-call]
            writer = conn._writer
            if writer is None:
                raise redis_errors.ConnectionError("the connection closed as it was made")
            writer.transport.set_protocol(_Replies(self, conn))
            self._conn = conn
            if self._on_connect:
                self._write([_Waiting(self._on_connect, _ignore, _detached_future())])
        except Exception as exc:
            if conn is not None:
                await pool.release(conn)
            unsent, self._unsent = self._unsent, []
            failure = NotSentError(f"not sent: connecting to Redis failed ({type(exc).__name__})")
            failure.__cause__ = exc
            for waiting in unsent:
                waiting.settle(failure)
            return
        finally:
            self._connecting = None
        unsent, self._unsent = self._unsent, []
        self._write(unsent)

    def _write(self, batch: list[_Waiting]) -> None:
        conn = self._conn
        assert conn is not None
        writer = conn._writer
        if writer is None:  # disconnected under us: nothing of the batch went out
            self._break(redis_errors.ConnectionError("the pipe's connection was closed"))
            for waiting in batch:
                waiting.settle(NotSentError("not sent: the connection was closed"))
            return
        # Packed by hiredis directly: redis-py's packing first runs every argument
        # through its encoder, a quarter of an add's own CPU time.
        packed = b"".join(
            hiredis.pack_command(tuple(command))
            for waiting in batch
            for command in waiting.commands
        )
        # Appended before the write, in the same step: replies come in this order.
        self._in_flight.extend(batch)
        writer.write(packed)
        if self._watchdog is None:
            self._arm_watchdog()

    def _on_reply(self, conn: AbstractConnection, reply: Any) -> None:
        """Hand one reply (in the order the commands were written) to its send."""
        if self._conn is not conn:
            return  # a connection already given up
        self._replies_read += 1
        if not self._in_flight:
            self._break(redis_errors.InvalidResponse("a reply nobody asked for"))
            return
        waiting = self._in_flight[0]
        waiting.replies.append(reply)
        if len(waiting.replies) == len(waiting.commands):
            self._in_flight.popleft()
            waiting.settle(waiting.replies)

    def _on_lost(self, conn: AbstractConnection, error: BaseException) -> None:
        if self._conn is conn:
            self._break(error)

    def _arm_watchdog(self) -> None:
        seen = self._replies_read
        self._watchdog = asyncio.get_running_loop().call_later(
            self._reply_timeout_s, self._check_replies, seen
        )

    def _check_replies(self, seen: int) -> None:
        """No reply since the watchdog was armed, with commands waiting: dead."""
        self._watchdog = None
        if not self._in_flight:
            return
        if self._replies_read == seen:
            self._break(redis_errors.TimeoutError("Timeout reading from the pipe's connection"))
        else:
            self._arm_watchdog()

    def _break(self, error: BaseException) -> None:
        """Fail every command waiting for a reply and give the connection up."""
        conn, self._conn = self._conn, None
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        in_flight, self._in_flight = self._in_flight, deque()
        for waiting in in_flight:
            waiting.settle(error)
        if conn is not None:
            drop = asyncio.get_running_loop().create_task(self._drop(conn))
            self._drops.add(drop)
            drop.add_done_callback(self._drops.discard)
        if self._closed:
            unsent, self._unsent = self._unsent, []
            for waiting in unsent:
                waiting.settle(error)

    async def _drop(self, conn: AbstractConnection) -> None:
        # ``nowait``: the stream reader no longer hears of the close, so waiting for
        # it to would never end.
        with contextlib.suppress(Exception):
            await conn.disconnect(nowait=True)
        with contextlib.suppress(Exception):
            await self._client.connection_pool.release(conn)


class _Replies(asyncio.Protocol):
    """The pipe's connection's protocol once it is up: replies parsed as they arrive
    (error replies as redis-py's exception objects, ``NoScriptError`` included)."""

    def __init__(self, pipe: CommandPipe, conn: AbstractConnection) -> None:
        self._pipe = pipe
        self._conn = conn
        # Decoded as redis-py would read them on this connection.
        encoder = conn.encoder
        decoding = (
            {"encoding": encoder.encoding, "errors": encoder.encoding_errors}
            if encoder.decode_responses
            else {}
        )
        self._parser = hiredis.Reader(
            protocolError=redis_errors.InvalidResponse,
            replyError=BaseParser.parse_error,
            notEnoughData=_NOT_ENOUGH_DATA,
            **decoding,
        )

    def data_received(self, data: bytes) -> None:
        self._parser.feed(data)
        try:
            while (reply := self._parser.gets()) is not _NOT_ENOUGH_DATA:
                self._pipe._on_reply(self._conn, reply)
        except redis_errors.InvalidResponse as exc:
            self._pipe._on_lost(self._conn, exc)

    def eof_received(self) -> bool:
        return False  # close: ``connection_lost`` follows

    def connection_lost(self, exc: Exception | None) -> None:
        error = exc or redis_errors.ConnectionError("Connection closed by server.")
        self._pipe._on_lost(self._conn, error)


#: What the parser answers while a reply is incomplete.
_NOT_ENOUGH_DATA = object()


class NotSentError(redis_errors.ConnectionError):
    """The commands were never written: Redis certainly did not run them."""


def _ignore(outcome: list[Any] | BaseException) -> None:
    return None


def _detached_future() -> asyncio.Future[Any]:
    """A future nobody awaits (the on-connect commands'): its failure is not logged as
    never retrieved, since the commands after it fail the same way."""
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    future.add_done_callback(lambda done: done.cancelled() or done.exception())
    return future

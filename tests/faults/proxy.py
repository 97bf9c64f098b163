"""A TCP proxy between a client and a real server (Redis, SMTP, ...) that injects faults.

The proxy runs its own asyncio event loop in a thread of its own, so it behaves like a
network: a test whose event loop is busy (a CPU-bound handler, a blocking call) does not
slow the proxy down, and the proxy keeps its timings while the test loop is stalled.
Every public method is thread-safe and synchronous; it returns once the change is in
effect (after ``pause()`` returns, no further byte is forwarded). Calling them from an
async test is fine: each call is a round trip of well under a millisecond to the
proxy's thread.

Usage::

    with FaultProxy("redis://127.0.0.1:6379/0") as proxy:       # or ``async with``
        client = Redis.from_url(proxy.url)                       # redis://127.0.0.1:<port>/0
        proxy.set_latency(up_ms=50, down_ms=50)
        proxy.pause(); ...; proxy.resume()
        proxy.blackhole(True); ...; proxy.blackhole(False)
        proxy.drop_connections()
        proxy.refuse(True); ...; proxy.refuse(False)
        proxy.periodic_pause(every_s=0.5, for_ms=200); ...; proxy.stop_periodic_pause()
        proxy.heal()                                             # every fault off
        proxy.stats.accepted, proxy.stats.bytes_up, ...

Faults (any combination, switched on and off at any time):

* ``set_latency(up_ms=, down_ms=)``: every chunk of bytes is delivered no earlier than
  ``received + latency`` of its direction (``up`` = client to server, ``down`` = server
  to client). Chunks stay in order and do not queue behind each other's delay: it is
  a one-way delay, not a bandwidth limit. A request/reply round trip gets
  ``up_ms + down_ms`` added. A change applies to bytes already waiting, too.
* ``pause()`` / ``resume()``: hold every byte in both directions of every connection,
  closing nothing (a server stalled on fsync, a stop-the-world pause). The proxy keeps
  reading from both sides while paused (like the kernel buffers of a stalled server)
  up to ``max_held_bytes`` per direction and connection, then stops reading, so
  the sender's socket buffers fill. Held bytes are delivered, in order, on resume.
  New connections are accepted while paused; the proxy connects them to the server
  only on resume.
* ``periodic_pause(every_s, for_ms)``: in the background, pause for ``for_ms`` at
  ``every_s``, ``2 * every_s``, ... after the call, until ``stop_periodic_pause()``
  (or ``heal()``). It is independent of ``pause()``: a manual pause stays in force
  across periodic resumes. ``stats.periodic_pauses`` counts the pauses begun.
* ``blackhole(True)`` / ``blackhole(False)``: a network partition. Connections are
  still accepted and existing ones stay open, but no byte is forwarded and nothing is
  answered; held bytes are **delivered on heal** (``blackhole(False)``), in order, as
  TCP retransmission does when a partition heals. This is the case that makes a
  command ambiguous: a client that timed out and hung up still gets its command
  executed on heal (the proxy forwards the command, then the client's FIN). To model a
  partition that outlasts TCP instead (bytes lost, connections dead), call
  ``drop_connections()`` while the blackhole is on, then heal. Mechanically a
  blackhole holds bytes like ``pause()``; the two are separate switches (resuming does
  not heal a partition) so scenarios read as what they model. What a proxy cannot
  model: the client's kernel still gets TCP ACKs (from the proxy), so TCP keepalive
  and retransmission timeouts never fire; only application timeouts do.
* ``drop_connections()``: reset every open connection now, on both sides, with an RST
  (``SO_LINGER`` 0): the client sees ``ConnectionResetError`` (or EOF), the server
  sees its client vanish. Held bytes are discarded. The listener stays open, so a
  client that reconnects gets a fresh connection.
* ``refuse(True, drop_existing=False)`` / ``refuse(False)``: close the listening
  socket, so new connections get ``ECONNREFUSED``. Existing connections are **kept**
  (and keep forwarding) unless ``drop_existing=True``, which resets them like
  ``drop_connections()``. ``refuse(False)`` listens again on the same port.

If the server cannot be reached when the proxy connects a client to it, the client's
connection is reset (``stats.upstream_failures``), as a dead host would.

Counters (``stats``, a frozen :class:`ProxyStats` snapshot): connections accepted,
open, dropped and failed, bytes delivered and bytes held per direction, periodic pauses.

``stop()`` (or leaving the ``with`` block) resets every connection, closes the listener,
stops the thread and closes its loop: no thread, socket or task is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import threading
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self, TypeVar
from urllib.parse import urlsplit, urlunsplit

__all__ = ["Direction", "FaultProxy", "ProxyStats"]

Direction = Literal["up", "down"]
T = TypeVar("T")

log = logging.getLogger(__name__)

#: Bytes read per ``read()`` call on either side.
_CHUNK = 64 * 1024
#: The counters of ``ProxyStats`` kept as running totals (the others are computed).
_COUNTERS = (
    "accepted",
    "dropped",
    "upstream_failures",
    "bytes_up",
    "bytes_down",
    "periodic_pauses",
)
#: How long a control call waits for the proxy's thread before giving up.
_CONTROL_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class ProxyStats:
    """A snapshot of the proxy's counters (``FaultProxy.stats``).

    Attributes:
        accepted: Client connections accepted since start.
        active: Connections open now.
        dropped: Connections reset by ``drop_connections()`` or
            ``refuse(True, drop_existing=True)``.
        upstream_failures: Client connections reset because the server was unreachable.
        bytes_up: Bytes delivered to the server (client to server).
        bytes_down: Bytes delivered to clients (server to client).
        held_up: Bytes read from clients and not delivered yet (latency, pause, blackhole).
        held_down: Bytes read from the server and not delivered yet.
        periodic_pauses: Pauses begun by ``periodic_pause()``.
    """

    accepted: int = 0
    active: int = 0
    dropped: int = 0
    upstream_failures: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    held_up: int = 0
    held_down: int = 0
    periodic_pauses: int = 0


class _Pipe:
    """One direction of one connection: chunks read and not yet delivered."""

    def __init__(self, direction: Direction) -> None:
        self.direction: Direction = direction
        # (time read on the proxy loop's clock, bytes or None for EOF)
        self.chunks: deque[tuple[float, bytes | None]] = deque()
        self.held = 0
        self.readable = asyncio.Event()
        self.space = asyncio.Event()
        self.space.set()

    def push(self, at: float, data: bytes | None) -> None:
        self.chunks.append((at, data))
        self.held += len(data or b"")
        self.readable.set()

    def pop(self, limit: int) -> bytes | None:
        _, data = self.chunks.popleft()
        self.held -= len(data or b"")
        if self.held < limit:
            self.space.set()
        return data

    def discard(self) -> None:
        self.chunks.clear()
        self.held = 0


def _reset_writer(writer: asyncio.StreamWriter) -> None:
    """Close a connection with an RST (SO_LINGER 0) instead of a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _no_delay(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _Connection:
    """A client connection and, once connected, its server connection."""

    def __init__(
        self, proxy: FaultProxy, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.proxy = proxy
        self.client_reader = reader
        self.client_writer = writer
        self.server_writer: asyncio.StreamWriter | None = None
        self.up = _Pipe("up")
        self.down = _Pipe("down")
        self.eofs_delivered = 0
        self.closed = False
        self.tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("proxy connection task failed; resetting it", exc_info=error)
            self.reset()

    def writers(self) -> list[asyncio.StreamWriter]:
        return [w for w in (self.client_writer, self.server_writer) if w is not None]

    def reset(self) -> None:
        """RST both sides, discard held bytes, stop every task of this connection."""
        if self.closed:
            return
        self.closed = True
        for writer in self.writers():
            _reset_writer(writer)
        self._forget()

    def finish(self) -> None:
        """Both directions delivered their EOF: close both sides normally."""
        if self.closed:
            return
        self.closed = True
        for writer in self.writers():
            writer.close()
            # Closed once its buffer is flushed; aborted at stop() if still open then.
            self.proxy._closing.append(writer)
        self._forget()

    def _forget(self) -> None:
        self.up.discard()
        self.down.discard()
        current = asyncio.current_task()
        for task in list(self.tasks):
            if task is not current:
                task.cancel()
        self.proxy._connections.discard(self)


class FaultProxy:
    """A fault-injecting TCP proxy in front of ``upstream``, on its own thread and loop.

    Args:
        upstream: The real server: a URL (``redis://127.0.0.1:6379/0``,
            ``smtp://127.0.0.1:2525``) or ``host:port``. ``url`` is this URL with the
            proxy's address in place of the server's (user, path and query kept).
        host: Where the proxy listens.
        port: Port to listen on; 0 (the default) lets the OS choose one. The port is
            kept across ``refuse(True)`` / ``refuse(False)``.
        max_held_bytes: Per connection and direction, how many bytes the proxy reads
            ahead and holds (while paused, blackholed or delayed) before it stops
            reading from the sender.
    """

    def __init__(
        self,
        upstream: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_held_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        parts = urlsplit(upstream if "://" in upstream else f"tcp://{upstream}")
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"upstream needs a host and a port: {upstream!r}")
        self.upstream_host: str = parts.hostname
        self.upstream_port: int = parts.port
        self._url_parts = parts
        self.host = host
        self._port = port
        self._max_held = max_held_bytes

        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False

        # Everything below is touched only on the proxy's loop.
        self._listener: socket.socket | None = None
        self._accept_task: asyncio.Task[None] | None = None
        self._periodic_task: asyncio.Task[None] | None = None
        self._connections: set[_Connection] = set()
        self._closing: list[asyncio.StreamWriter] = []
        self._latency_s: dict[Direction, float] = {"up": 0.0, "down": 0.0}
        self._paused = False
        self._periodic_paused = False
        self._blackholed = False
        self._changed: asyncio.Event | None = None
        self._counts: dict[str, int] = dict.fromkeys(_COUNTERS, 0)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        """Start the thread and listen (idempotent while running). Returns ``self``."""
        if self._stopped:
            raise RuntimeError("a FaultProxy cannot be restarted; make a new one")
        if self._thread is not None:
            return self
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="FaultProxy", daemon=True)
        self._thread.start()
        try:
            self._run(self._open())
        except BaseException:
            self.stop()
            raise
        self._thread.name = f"FaultProxy:{self._port}->{self.upstream_port}"
        return self

    def stop(self) -> None:
        """Reset every connection, close the listener, stop and join the thread."""
        if self._stopped:
            return
        self._stopped = True
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            if thread.is_alive():
                self._run(self._shutdown())
        finally:
            if thread.is_alive():
                loop.call_soon_threadsafe(loop.stop)
            thread.join(_CONTROL_TIMEOUT_S)
        if thread.is_alive():
            raise RuntimeError("the proxy's thread did not stop")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return self.start()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ addresses

    @property
    def port(self) -> int:
        """The port the proxy listens on (chosen by the OS at ``start()``)."""
        if self._thread is None:
            raise RuntimeError("the proxy is not started")
        return self._port

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` of the proxy."""
        return self.host, self.port

    @property
    def url(self) -> str:
        """The upstream URL with the proxy's address: what the client should connect to."""
        parts = self._url_parts
        userinfo = parts.netloc.rpartition("@")[0]
        host = f"[{self.host}]" if ":" in self.host else self.host
        netloc = f"{host}:{self.port}"
        if userinfo:
            netloc = f"{userinfo}@{netloc}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))

    # ------------------------------------------------------------------ faults

    def set_latency(self, *, up_ms: float = 0.0, down_ms: float = 0.0) -> None:
        """Delay client-to-server bytes by ``up_ms`` and server-to-client ones by
        ``down_ms`` (0 turns a direction's delay off)."""
        if up_ms < 0 or down_ms < 0:
            raise ValueError("latency cannot be negative")

        def change() -> None:
            self._latency_s = {"up": up_ms / 1000, "down": down_ms / 1000}
            self._notify()

        self._call(change)

    def pause(self) -> None:
        """Hold every byte in both directions until ``resume()``; nothing is closed."""
        self._call(lambda: self._set("_paused", True))

    def resume(self) -> None:
        """Deliver what ``pause()`` held and forward again (periodic pauses go on)."""
        self._call(lambda: self._set("_paused", False))

    def periodic_pause(self, every_s: float, for_ms: float) -> None:
        """Pause for ``for_ms`` every ``every_s`` seconds (the first pause begins
        ``every_s`` from now) until ``stop_periodic_pause()``. Replaces an earlier
        schedule."""
        if for_ms <= 0 or for_ms / 1000 >= every_s:
            raise ValueError("need 0 < for_ms / 1000 < every_s")
        self._run(self._start_periodic(every_s, for_ms / 1000))

    def stop_periodic_pause(self) -> None:
        """Stop ``periodic_pause()``; a periodic pause in progress ends now."""
        self._run(self._stop_periodic())

    def blackhole(self, on: bool) -> None:
        """Partition (True) or heal (False). While on, nothing is forwarded or answered;
        what was held is delivered on heal (``drop_connections()`` first to lose it)."""
        self._call(lambda: self._set("_blackholed", on))

    def drop_connections(self) -> int:
        """Reset (RST) every open connection on both sides now; returns how many."""
        return self._call(self._drop_all)

    def refuse(self, on: bool, *, drop_existing: bool = False) -> None:
        """Close (True) or reopen (False) the listening socket: while closed, new
        connections get ECONNREFUSED. Existing connections are kept unless
        ``drop_existing``, which resets them."""
        self._run(self._refuse(on, drop_existing))

    def heal(self) -> None:
        """Every fault off: no latency, resumed, no periodic pause, no blackhole,
        listening. Held bytes are delivered."""
        self.stop_periodic_pause()
        self.refuse(False)

        def change() -> None:
            self._latency_s = {"up": 0.0, "down": 0.0}
            self._paused = False
            self._blackholed = False
            self._notify()

        self._call(change)

    # ------------------------------------------------------------------ counters

    @property
    def stats(self) -> ProxyStats:
        """A snapshot of the counters."""

        def snapshot() -> ProxyStats:
            return ProxyStats(
                active=len(self._connections),
                held_up=sum(conn.up.held for conn in self._connections),
                held_down=sum(conn.down.held for conn in self._connections),
                **self._counts,
            )

        return self._call(snapshot)

    # ------------------------------------------------------------------ thread plumbing

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the proxy's loop and wait for its result."""
        loop = self._loop
        if loop is None or self._thread is None or not self._thread.is_alive():
            coro.close()
            raise RuntimeError("the proxy is not running")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("control calls cannot be made from the proxy's own thread")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(_CONTROL_TIMEOUT_S)

    def _call(self, fn: Callable[[], T]) -> T:
        async def call() -> T:
            return fn()

        return self._run(call())

    def _count(self, name: str, increment: int = 1) -> None:
        self._counts[name] += increment

    # ------------------------------------------------------------------ on the proxy loop

    def _set(self, flag: str, value: bool) -> None:
        setattr(self, flag, value)
        self._notify()

    def _notify(self) -> None:
        """Wake every writer waiting on the fault state."""
        if self._changed is not None:
            self._changed.set()
        self._changed = asyncio.Event()

    def _holding(self) -> bool:
        return self._paused or self._periodic_paused or self._blackholed

    async def _open(self) -> None:
        self._notify()
        self._listen()

    def _listen(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self._port))
            sock.listen(128)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self._port = sock.getsockname()[1]
        self._listener = sock
        self._accept_task = asyncio.get_running_loop().create_task(self._accept(sock))

    async def _unlisten(self) -> None:
        task, sock = self._accept_task, self._listener
        self._accept_task = self._listener = None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if sock is not None:
            sock.close()

    async def _shutdown(self) -> None:
        await self._stop_periodic()
        await self._unlisten()
        pending = [task for conn in self._connections for task in conn.tasks]
        self._drop_all()
        for writer in self._closing:
            writer.transport.abort()  # a no-op when already closed
        await asyncio.gather(*pending, return_exceptions=True)
        # Let the aborted transports run their connection_lost (which closes sockets).
        for _ in range(3):
            await asyncio.sleep(0)

    def _drop_all(self) -> int:
        connections = list(self._connections)
        for conn in connections:
            conn.reset()
        self._count("dropped", len(connections))
        return len(connections)

    async def _refuse(self, on: bool, drop_existing: bool) -> None:
        if on:
            await self._unlisten()
            if drop_existing:
                self._drop_all()
        elif self._listener is None:
            self._listen()

    async def _start_periodic(self, every_s: float, for_s: float) -> None:
        await self._stop_periodic()
        self._periodic_task = asyncio.get_running_loop().create_task(self._periodic(every_s, for_s))

    async def _stop_periodic(self) -> None:
        task, self._periodic_task = self._periodic_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._periodic_paused:
            self._set("_periodic_paused", False)

    async def _periodic(self, every_s: float, for_s: float) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        n = 0
        while True:
            n += 1
            await asyncio.sleep(max(0.0, start + n * every_s - loop.time()))
            self._set("_periodic_paused", True)
            self._count("periodic_pauses")
            try:
                await asyncio.sleep(for_s)
            finally:
                self._set("_periodic_paused", False)

    async def _accept(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, _ = await loop.sock_accept(listener)
            except OSError:  # EMFILE and the like: try again shortly
                await asyncio.sleep(0.01)
                continue
            self._count("accepted")
            try:
                reader, writer = await asyncio.open_connection(sock=sock, limit=_CHUNK)
            except OSError:
                sock.close()
                continue
            _no_delay(writer)
            conn = _Connection(self, reader, writer)
            self._connections.add(conn)
            conn.spawn(self._read(conn, reader, conn.up))
            conn.spawn(self._connect(conn))

    async def _connect(self, conn: _Connection) -> None:
        """Connect ``conn`` to the server once nothing holds traffic, then pump."""
        while self._holding():
            assert self._changed is not None
            await self._changed.wait()
        try:
            reader, writer = await asyncio.open_connection(
                self.upstream_host, self.upstream_port, limit=_CHUNK
            )
        except OSError:
            self._count("upstream_failures")
            conn.reset()
            return
        if conn.closed:
            _reset_writer(writer)
            return
        _no_delay(writer)
        conn.server_writer = writer
        conn.spawn(self._read(conn, reader, conn.down))
        conn.spawn(self._write(conn, conn.up, writer))
        conn.spawn(self._write(conn, conn.down, conn.client_writer))

    async def _read(self, conn: _Connection, reader: asyncio.StreamReader, pipe: _Pipe) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while pipe.held >= self._max_held:
                pipe.space.clear()
                await pipe.space.wait()
            try:
                data = await reader.read(_CHUNK)
            except OSError:
                conn.reset()
                return
            pipe.push(loop.time(), data or None)
            if not data:
                return

    async def _write(self, conn: _Connection, pipe: _Pipe, writer: asyncio.StreamWriter) -> None:
        while True:
            data = await self._next_due(pipe)
            try:
                if data is None:
                    if writer.can_write_eof():
                        writer.write_eof()
                    conn.eofs_delivered += 1
                    if conn.eofs_delivered == 2:
                        conn.finish()
                    return
                writer.write(data)
                self._count(f"bytes_{pipe.direction}", len(data))
                await writer.drain()
            except OSError:
                conn.reset()
                return

    async def _next_due(self, pipe: _Pipe) -> bytes | None:
        """The next chunk of ``pipe`` once no fault holds it and its latency is over."""
        loop = asyncio.get_running_loop()
        while True:
            if not pipe.chunks:
                pipe.readable.clear()
                await pipe.readable.wait()
                continue
            changed = self._changed
            assert changed is not None
            if self._holding():
                await changed.wait()
                continue
            delay = pipe.chunks[0][0] + self._latency_s[pipe.direction] - loop.time()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await changed.wait()
                continue
            return pipe.pop(self._max_held)

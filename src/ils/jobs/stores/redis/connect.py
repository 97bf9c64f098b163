"""Redis clients made from one :class:`~ils.redis_settings.RedisConnection`.

Every client of a process (the store's shared, blocking and producers' clients, the
gate's probe, the event bus) comes from here, so TLS, credentials and Sentinel are
set up once and alike; the callers only choose timeouts and their retry policy, which
differ on purpose (see ``redis.bull.make_client``).

With Sentinel the client's pool asks the sentinels for the master each time it opens
a connection, and drops a connection that finds the old master demoted, so a
fail-over is followed without a restart. The master watch moves the asyncio clients
sooner, as soon as the sentinels name a new master (:func:`move_to_master`). The
sentinel connections belong to the client: closing the client closes them too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

import redis
import redis.asyncio as aioredis
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry as AsyncRetry
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.asyncio.sentinel import (
    SentinelConnectionPool,
    SentinelManagedConnection,
    SentinelManagedSSLConnection,
)
from redis.retry import Retry as SyncRetry
from redis.sentinel import Sentinel as SyncSentinel

from ils.redis_settings import RedisConnection, RedisTls

#: The name every data connection of ILS gives itself (``CLIENT SETNAME``).
CLIENT_NAME: Final = "ils"

#: The client class of one kind: asyncio or blocking.
ClientT = TypeVar("ClientT", aioredis.Redis, redis.Redis)


def as_connection(connection: RedisConnection | str) -> RedisConnection:
    """A connection description; a bare URL (what callers passed before) becomes one."""
    if isinstance(connection, RedisConnection):
        return connection
    return RedisConnection.from_url(connection)


class _AsyncSentinelClient(aioredis.Redis):
    """The master's client that also closes the sentinel connections it was made with."""

    owned_sentinel: AsyncSentinel | None = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        if self.owned_sentinel is not None:
            sentinel, self.owned_sentinel = self.owned_sentinel, None
            await sentinel.aclose()


class _SyncSentinelClient(redis.Redis):
    """The blocking counterpart of :class:`_AsyncSentinelClient`."""

    owned_sentinel: SyncSentinel | None = None

    def close(self) -> None:
        super().close()
        if self.owned_sentinel is not None:
            sentinel, self.owned_sentinel = self.owned_sentinel, None
            sentinel.close()


@dataclass(frozen=True, slots=True)
class _ClientKind(Generic[ClientT]):
    """The classes that make one kind of client, asyncio or blocking.

    They are all that differs between the two: options, credentials, TLS and the
    Sentinel set-up are built once in :func:`_client` for both, so the clients of one
    process cannot drift apart (a TLS option added to one kind only, say).
    """

    #: The client class; its ``from_url`` makes the client of a URL.
    direct: type[ClientT]
    #: The ``Sentinel`` class of the same kind; typed loosely, as mypy cannot tie a
    #: class of one module to ``ClientT``.
    sentinel: Callable[..., Any]
    #: The master's client class, which closes the sentinel connections it owns.
    master: type[ClientT]


class _PatientConnect:
    """Opening the socket (and TLS) is tried once more when it timed out.

    Why: the connect timeout runs on the event loop's clock. A task that holds the loop
    for longer than the timeout (a busy machine, a long callback) lets the timer fire
    before the loop reads the finished handshake, so a Redis that is up looks
    unreachable (``tests/jobs/test_redis_connect.py``). Nothing was sent yet, so trying
    again is safe; a Redis that really does not answer fails after twice the timeout.
    Only opening the socket is retried: a server that accepted the connection and
    then does not answer the first command (``CLIENT SETNAME``) fails at once, as does
    a command that timed out (it may have run).
    """

    async def _connect(self) -> None:
        try:
            await super()._connect()  # type: ignore[misc]
        except TimeoutError:  # asyncio's and the socket's timeouts are this one
            await super()._connect()  # type: ignore[misc]


class _PatientTcpConnection(_PatientConnect, aioredis.Connection):
    """A ``redis://`` connection (:class:`_PatientConnect`)."""


class _PatientSSLConnection(_PatientConnect, aioredis.SSLConnection):
    """A ``rediss://`` connection (:class:`_PatientConnect`)."""


class _PatientUnixConnection(_PatientConnect, aioredis.UnixDomainSocketConnection):
    """A ``unix://`` connection (:class:`_PatientConnect`)."""


_PATIENT_CLASSES: Final[dict[type[Any], type[Any]]] = {
    aioredis.Connection: _PatientTcpConnection,
    aioredis.SSLConnection: _PatientSSLConnection,
    aioredis.UnixDomainSocketConnection: _PatientUnixConnection,
}


def _patient_class(url: str) -> type[Any]:
    """The patient counterpart of the class redis-py picks for ``url``'s scheme."""
    chosen = parse_url(url).get("connection_class", aioredis.Connection)
    return _PATIENT_CLASSES[chosen]


class _FollowingConnection(_PatientConnect, SentinelManagedConnection):
    """A connection to the master the sentinels name, made again when the master was
    followed elsewhere (:func:`move_to_master`) while it was being made.

    Why: it asks the sentinels first and opens the socket after. A connect that heard
    the old master's name before a fail-over and got its socket after the connections
    to the old master were dropped would serve the old master until the sentinels
    demote it, and what it wrote there is thrown away on the resync (jobs added there
    would run and then be gone: ``tests/deploy/test_sentinel_connect_race.py``).
    """

    connection_pool: _FollowingPool

    async def _connect_retry(self) -> None:
        pool = self.connection_pool
        for _ in range(3):  # one more move while connecting again is already unlikely
            moves = pool.moves
            await super()._connect_retry()  # type: ignore[no-untyped-call]
            if pool.moves == moves or connection_address(self) == pool.followed:
                return
            await self.disconnect()
        raise redis.ConnectionError("the Redis master kept moving while connecting")


class _FollowingSSLConnection(_FollowingConnection, SentinelManagedSSLConnection):
    """:class:`_FollowingConnection` over TLS."""


class _FollowingPool(SentinelConnectionPool):
    """The master's pool, which :func:`move_to_master` can move to a new master at once."""

    def __init__(self, service_name: str, sentinel_manager: AsyncSentinel, **kwargs: Any) -> None:
        tls = kwargs.get("ssl", False)
        kwargs.setdefault(
            "connection_class", _FollowingSSLConnection if tls else _FollowingConnection
        )
        super().__init__(service_name, sentinel_manager, **kwargs)  # type: ignore[no-untyped-call]
        #: How often the master was followed; a connect that sees it change re-checks.
        self.moves = 0
        #: The master last followed.
        self.followed: tuple[str, int] | None = None

    async def follow(self, master: tuple[str, int]) -> None:
        """Drop every connection, in use or not, that reaches a server but ``master``;
        connects under way check again once they are made."""
        self.moves += 1
        self.followed = master
        connections = [*self._available_connections, *self._in_use_connections]
        # ``nowait``: a pipe's connection (``redis.pipe``) has its own protocol, and
        # waiting for the stream to hear of the close would last the whole timeout.
        await asyncio.gather(
            *(
                conn.disconnect(nowait=True)
                for conn in connections
                if connection_address(conn) != master
            ),
            return_exceptions=True,
        )


def connection_address(conn: Any) -> tuple[str, int] | None:
    """The server a connection was made to, as the sentinels name it (``None``
    before it was made)."""
    host, port = getattr(conn, "host", None), getattr(conn, "port", None)
    return None if host is None or port is None else (str(host), int(port))


async def move_to_master(client: aioredis.Redis, master: tuple[str, int]) -> None:
    """The sentinels named ``master`` (``redis.master_watch``): move ``client``'s
    connections there. Commands in flight on a dropped connection fail as on any
    dropped connection; connections already on ``master`` are kept. A client of a URL
    has no master to follow: nothing happens."""
    pool = client.connection_pool
    if isinstance(pool, _FollowingPool):
        await pool.follow(master)


_ASYNC: Final = _ClientKind(aioredis.Redis, AsyncSentinel, _AsyncSentinelClient)
_SYNC: Final = _ClientKind(redis.Redis, SyncSentinel, _SyncSentinelClient)


def async_client(
    connection: RedisConnection | str,
    *,
    connect_timeout_s: float,
    socket_timeout_s: float | None,
    retry: AsyncRetry | None = None,
    decode_responses: bool = False,
    encoding_errors: str = "strict",
    max_connections: int | None = None,
) -> aioredis.Redis:
    """An asyncio client; ``retry`` ``None`` keeps redis-py's default policy.
    ``encoding_errors`` is the codec error handler of decoded replies (and of
    commands' text), ``"surrogateescape"`` to read bytes that are not UTF-8.
    ``max_connections`` bounds the pool (redis-py's default otherwise); a command
    that finds it full fails with ``MaxConnectionsError``, so a caller that may
    run more commands at once than that must wait for a slot itself."""
    return _client(
        _ASYNC,
        connection,
        connect_timeout_s,
        socket_timeout_s,
        retry,
        decode_responses,
        encoding_errors,
        max_connections,
    )


def sync_client(
    connection: RedisConnection | str,
    *,
    connect_timeout_s: float,
    socket_timeout_s: float | None,
    retry: SyncRetry | None = None,
    decode_responses: bool = False,
) -> redis.Redis:
    """A blocking client (for code that runs in a thread of its own)."""
    return _client(
        _SYNC,
        connection,
        connect_timeout_s,
        socket_timeout_s,
        retry,
        decode_responses,
    )


def _client(
    kind: _ClientKind[ClientT],
    connection: RedisConnection | str,
    connect_timeout_s: float,
    socket_timeout_s: float | None,
    retry: AsyncRetry | SyncRetry | None,
    decode_responses: bool,
    encoding_errors: str = "strict",
    max_connections: int | None = None,
) -> ClientT:
    """A client of ``kind``: from the URL, or the master's through the sentinels.

    The public functions pin ``retry`` to the kind's own ``Retry`` class; here it is
    only passed on.
    """
    conn = as_connection(connection)
    options = _options(conn, connect_timeout_s, socket_timeout_s, decode_responses)
    options["encoding_errors"] = encoding_errors
    if max_connections is not None:
        options["max_connections"] = max_connections
    if retry is not None:
        options["retry"] = retry
    if conn.url is not None:
        if kind is _ASYNC:
            options["connection_class"] = _patient_class(conn.url)
        return kind.direct.from_url(conn.url, **options)
    sentinel = kind.sentinel(
        conn.sentinels, sentinel_kwargs=_sentinel_options(conn, connect_timeout_s)
    )
    if kind is _ASYNC:
        _patient_sentinels(sentinel)
        options["connection_pool_class"] = _FollowingPool
    client = sentinel.master_for(conn.service, redis_class=kind.master, **options)
    client.owned_sentinel = sentinel
    assert isinstance(client, kind.master)
    return client


def async_sentinel(connection: RedisConnection, timeout_s: float) -> AsyncSentinel:
    """The sentinels of ``connection`` themselves (to ask them who the master is), with
    the same credentials and TLS as the clients' own look-ups."""
    sentinel = AsyncSentinel(
        connection.sentinels, sentinel_kwargs=_sentinel_options(connection, timeout_s)
    )
    _patient_sentinels(sentinel)
    return sentinel


def _patient_sentinels(sentinel: AsyncSentinel) -> None:
    """Make the connections to the sentinels themselves :class:`_PatientConnect` too:
    redis-py builds their clients with no way to name the connection class, and a
    master look-up that a busy loop timed out fails the data connect with it. Set
    before any connection is made, so every one of them is patient."""
    for client in sentinel.sentinels:
        pool = client.connection_pool
        pool.connection_class = _PATIENT_CLASSES[pool.connection_class]


def _options(
    conn: RedisConnection,
    connect_timeout_s: float,
    socket_timeout_s: float | None,
    decode_responses: bool,
) -> dict[str, Any]:
    """Keyword arguments of the data connections. A URL's own credentials and database
    win over these (``from_url`` lets the URL override keyword arguments)."""
    options: dict[str, Any] = {
        # Named, so that ``CLIENT LIST`` tells an operator (and the fail-over tests)
        # which connections are ILS's.
        "client_name": CLIENT_NAME,
        "socket_connect_timeout": connect_timeout_s,
        "socket_timeout": socket_timeout_s,
        "decode_responses": decode_responses,
        "db": conn.db,
    }
    if conn.username is not None:
        options["username"] = conn.username
    if conn.password is not None:
        options["password"] = conn.password.get_secret_value()
    if conn.tls is not None:
        options.update(_tls_options(conn.tls))
        if conn.url is not None:
            # The rediss:// scheme already picks the TLS connection class.
            del options["ssl"]
    return options


def _sentinel_options(conn: RedisConnection, timeout_s: float) -> dict[str, Any]:
    """The sentinels' connections: always a timeout (a blocking data client has none,
    but asking for the master must not hang), their own password, the same TLS."""
    options: dict[str, Any] = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s}
    if conn.sentinel_password is not None:
        options["password"] = conn.sentinel_password.get_secret_value()
    if conn.tls is not None:
        options.update(_tls_options(conn.tls))
    return options


def _tls_options(tls: RedisTls) -> dict[str, Any]:
    """redis-py's TLS arguments: the server is always verified (certificate and host
    name); a client certificate is sent when one is configured."""
    options: dict[str, Any] = {"ssl": True, "ssl_cert_reqs": "required"}
    if tls.ca_file is not None:
        options["ssl_ca_certs"] = str(tls.ca_file)
    if tls.cert_file is not None:
        options["ssl_certfile"] = str(tls.cert_file)
    if tls.key_file is not None:
        options["ssl_keyfile"] = str(tls.key_file)
    return options

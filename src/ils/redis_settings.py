"""How to reach Redis, described once and used by every client of the process.

People hand Redis over in one of three shapes, and every client (the store's three, the
gate's probe, the event bus) must read the same one, or a fleet would split across two
servers without noticing:

* a URL, ``ILS_REDIS_URL`` (``redis://`` or, with TLS, ``rediss://``);
* a host and port, ``REDIS_HOST`` / ``REDIS_PORT`` / ``REDIS_PASSWORD`` as the original
  deployment scripts set them (``ILS_REDIS_URL`` wins when both are there);
* Sentinel, ``ILS_REDIS_SENTINELS`` plus the service name: the master is asked of the
  sentinels on every new connection, so a fail-over needs no restart.

:func:`redis_connection_of` turns the flat settings into one :class:`RedisConnection`
and refuses combinations that cannot work with a :class:`~ils.errors.ConfigurationError`
naming the variables, so a mistake shows at start-up and not as a later outage.
``ils.jobs.stores.redis.connect`` makes the clients from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, SecretStr, model_validator

from ils.errors import ConfigurationError

if TYPE_CHECKING:
    from ils.settings import Settings

#: The port sentinels listen on unless told otherwise.
SENTINEL_DEFAULT_PORT = 26379


class RedisTls(BaseModel):
    """TLS to Redis: the CA that signed the server's certificate, and the client's own
    certificate when the server asks for one (``tls-auth-clients yes``). Without a CA
    file the system's trust store is used (a managed Redis with a public CA)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ca_file: Path | None = None
    cert_file: Path | None = None
    # May be left out when the certificate file holds the key too.
    key_file: Path | None = None


class RedisConnection(BaseModel):
    """Where Redis is: a URL, or a Sentinel service; credentials and TLS for either.

    ``password``, ``username`` and ``db`` apply to the data nodes; what a URL spells out
    itself wins over them. ``tls`` is ``None`` for a plain connection.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str | None = None
    sentinels: tuple[tuple[str, int], ...] = ()
    service: str = "mymaster"
    db: int = 0
    username: str | None = None
    password: SecretStr | None = None
    sentinel_password: SecretStr | None = None
    tls: RedisTls | None = None

    @model_validator(mode="after")
    def _one_shape(self) -> RedisConnection:
        """Exactly one of a URL and sentinels; TLS on a URL exactly when it says rediss."""
        if (self.url is None) == (not self.sentinels):
            raise ValueError("give either a URL or sentinels")
        if self.url is not None and (self.tls is not None) != self.url.startswith("rediss://"):
            raise ValueError("TLS goes with a rediss:// URL, and only with one")
        return self

    @classmethod
    def from_url(cls, url: str) -> RedisConnection:
        """A plain URL connection (what callers passed before there was anything else)."""
        return cls(url=url, tls=RedisTls() if url.startswith("rediss://") else None)

    def describe(self) -> str:
        """Where Redis is, for logs and errors: never a password."""
        if self.url is None:
            nodes = ",".join(f"{host}:{port}" for host, port in self.sentinels)
            return f"sentinel service {self.service!r} via {nodes} (db {self.db})"
        parts = urlsplit(self.url)
        if parts.password is not None:
            netloc = parts.netloc.rpartition("@")[2]
            user = parts.username or ""
            return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))
        return self.url


def redis_connection_of(settings: Settings) -> RedisConnection | None:
    """The settings' Redis as one description; ``None`` when Redis is not configured.

    Raises:
        ConfigurationError: two ways given at once (a URL and sentinels), TLS files
            without TLS, a file that is not there, a malformed sentinel list.
    """
    if settings.redis_sentinels and settings.redis_url:
        raise ConfigurationError(
            "set ILS_REDIS_URL or ILS_REDIS_SENTINELS, not both: "
            "with Sentinel the master's address comes from the sentinels"
        )
    tls = _tls(settings)
    common = {
        "db": settings.redis_db,
        "username": settings.redis_username,
        "password": settings.redis_password,
        "tls": tls,
    }
    if settings.redis_sentinels:
        return RedisConnection(
            sentinels=parse_sentinels(settings.redis_sentinels),
            service=settings.redis_sentinel_service,
            sentinel_password=settings.redis_sentinel_password,
            **common,
        )
    if settings.redis_url:
        return RedisConnection(url=settings.redis_url, **common)
    if settings.redis_host:
        host = settings.redis_host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"  # an IPv6 address
        scheme = "rediss" if tls is not None else "redis"
        url = f"{scheme}://{host}:{settings.redis_port}/{settings.redis_db}"
        return RedisConnection(url=url, **common)
    return None


def _tls(settings: Settings) -> RedisTls | None:
    """TLS is on with a ``rediss://`` URL, or with ``ILS_REDIS_TLS`` for a host or
    sentinels; certificate files given while it is off would be silently unused."""
    url = settings.redis_url
    if url is not None and settings.redis_tls and not url.startswith("rediss://"):
        raise ConfigurationError("ILS_REDIS_TLS is on but ILS_REDIS_URL is not rediss://")
    files = {
        "ILS_REDIS_TLS_CA_FILE": settings.redis_tls_ca_file,
        "ILS_REDIS_TLS_CERT_FILE": settings.redis_tls_cert_file,
        "ILS_REDIS_TLS_KEY_FILE": settings.redis_tls_key_file,
    }
    on = settings.redis_tls or (url is not None and url.startswith("rediss://"))
    given = [name for name, path in files.items() if path is not None]
    if not on:
        if given:
            raise ConfigurationError(
                f"{', '.join(given)} set but TLS is off: use a rediss:// URL "
                "or set ILS_REDIS_TLS=true"
            )
        return None
    if settings.redis_tls_key_file is not None and settings.redis_tls_cert_file is None:
        raise ConfigurationError("ILS_REDIS_TLS_KEY_FILE needs ILS_REDIS_TLS_CERT_FILE")
    for name, path in files.items():
        if path is not None and not path.is_file():
            raise ConfigurationError(f"{name}: {path} is not a readable file")
    return RedisTls(
        ca_file=settings.redis_tls_ca_file,
        cert_file=settings.redis_tls_cert_file,
        key_file=settings.redis_tls_key_file,
    )


def parse_sentinels(value: str) -> tuple[tuple[str, int], ...]:
    """``"host:port,host:port"`` (port 26379 when left out; ``[v6]:port``) as pairs.

    Raises:
        ConfigurationError: an entry without a host, a bad port, no entry at all.
    """
    nodes: list[tuple[str, int]] = []
    for raw in value.split(","):
        entry = raw.strip()
        if not entry:
            continue
        host, port = entry, SENTINEL_DEFAULT_PORT
        if entry.startswith("["):
            host, _, rest = entry[1:].partition("]")
            port_text = rest.removeprefix(":")
        elif entry.count(":") == 1:
            host, _, port_text = entry.partition(":")
        else:
            port_text = ""
        if port_text:
            if not port_text.isdigit() or not 0 < int(port_text) < 65536:
                raise ConfigurationError(f"ILS_REDIS_SENTINELS: bad port in {entry!r}")
            port = int(port_text)
        if not host:
            raise ConfigurationError(f"ILS_REDIS_SENTINELS: no host in {entry!r}")
        nodes.append((host, port))
    if not nodes:
        raise ConfigurationError("ILS_REDIS_SENTINELS lists no sentinel (host:port,host:port)")
    return tuple(nodes)

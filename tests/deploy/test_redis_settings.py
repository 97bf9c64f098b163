"""Redis given as people deploy it: URL, host and port, Sentinel, TLS; one description."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.asyncio.connection import SSLConnection as AsyncSSLConnection
from redis.connection import SSLConnection

from ils.errors import ConfigurationError
from ils.jobs.stores.redis.connect import async_client, sync_client
from ils.redis_settings import RedisConnection, RedisTls, parse_sentinels
from ils.settings import Settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def test_local_mode_without_any_redis_setting() -> None:
    settings = Settings(_env_file=None)
    assert not settings.redis_configured
    assert settings.redis_connection() is None


def test_seed_variables_give_a_host_and_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_HOST", "redis.internal")
    monkeypatch.setenv("REDIS_PORT", "6380")
    monkeypatch.setenv("REDIS_PASSWORD", "s3cret")
    settings = Settings(_env_file=None)
    assert settings.redis_configured
    connection = settings.redis_connection()
    assert connection is not None
    assert connection.url == "redis://redis.internal:6380/0"
    assert connection.password is not None
    assert connection.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings) + repr(connection) + connection.describe()


def test_ils_redis_url_wins_over_the_seed_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_HOST", "elsewhere")
    monkeypatch.setenv("ILS_REDIS_URL", "redis://127.0.0.1:6379/3")
    connection = Settings(_env_file=None).redis_connection()
    assert connection is not None
    assert connection.url == "redis://127.0.0.1:6379/3"


def test_fields_still_pass_by_name() -> None:
    settings = Settings(_env_file=None, redis_host="h", redis_port=7000, redis_password="pw")
    connection = settings.redis_connection()
    assert connection is not None and connection.url == "redis://h:7000/0"


def test_sentinels_are_parsed() -> None:
    assert parse_sentinels(" a:1, b , [::1]:26380,") == (("a", 1), ("b", 26379), ("::1", 26380))
    for bad in ("", ",", "a:x", "a:0", ":5"):
        with pytest.raises(ConfigurationError, match="ILS_REDIS_SENTINELS"):
            parse_sentinels(bad)
    settings = Settings(
        _env_file=None,
        redis_sentinels="s1:26379,s2:26379",
        redis_sentinel_service="ils",
        redis_password="master-pw",
        redis_sentinel_password="sentinel-pw",
    )
    connection = settings.redis_connection()
    assert connection is not None
    assert connection.url is None
    assert connection.sentinels == (("s1", 26379), ("s2", 26379))
    assert connection.service == "ils"
    assert "pw" not in connection.describe()


def test_url_and_sentinels_together_are_refused() -> None:
    settings = Settings(_env_file=None, redis_url="redis://x", redis_sentinels="s:26379")
    with pytest.raises(ConfigurationError, match="not both"):
        settings.redis_connection()


def test_tls_files_need_tls_and_must_exist(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("not checked here")
    plain = Settings(_env_file=None, redis_url="redis://x", redis_tls_ca_file=ca)
    with pytest.raises(ConfigurationError, match="TLS is off"):
        plain.redis_connection()
    missing = Settings(
        _env_file=None, redis_url="rediss://x", redis_tls_ca_file=tmp_path / "nope.crt"
    )
    with pytest.raises(ConfigurationError, match="ILS_REDIS_TLS_CA_FILE"):
        missing.redis_connection()
    key_only = Settings(_env_file=None, redis_url="rediss://x", redis_tls_key_file=ca)
    with pytest.raises(ConfigurationError, match="needs ILS_REDIS_TLS_CERT_FILE"):
        key_only.redis_connection()
    contradiction = Settings(_env_file=None, redis_url="redis://x", redis_tls=True)
    with pytest.raises(ConfigurationError, match="rediss"):
        contradiction.redis_connection()
    host = Settings(_env_file=None, redis_host="h", redis_tls=True, redis_tls_ca_file=ca)
    connection = host.redis_connection()
    assert connection is not None
    assert connection.url == "rediss://h:6379/0"
    assert connection.tls == RedisTls(ca_file=ca)


def test_describe_hides_a_password_in_the_url() -> None:
    connection = RedisConnection.from_url("rediss://user:hunter2@cache:6380/1")
    assert connection.describe() == "rediss://user:***@cache:6380/1"
    assert connection.tls == RedisTls()


def test_a_kubernetes_service_link_in_redis_port_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    # Kubernetes sets this in every pod of a namespace with a service named "redis".
    monkeypatch.setenv("REDIS_PORT", "tcp://10.0.0.7:6380")
    settings = Settings(_env_file=None)
    assert not settings.redis_configured  # a port alone chooses nothing
    monkeypatch.setenv("REDIS_HOST", "redis")
    connection = Settings(_env_file=None).redis_connection()
    assert connection is not None and connection.url == "redis://redis:6380/0"


def test_sentinel_clients_speak_tls_to_master_and_sentinels(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("not read until a connection is made")
    connection = RedisConnection(
        sentinels=(("s1", 26379),), tls=RedisTls(ca_file=ca), password="pw"
    )
    client = sync_client(connection, connect_timeout_s=1, socket_timeout_s=1)
    try:
        pool = client.connection_pool
        assert issubclass(pool.connection_class, SSLConnection)
        assert pool.connection_kwargs["ssl_ca_certs"] == str(ca)
        assert pool.connection_kwargs["password"] == "pw"
        (sentinel,) = client.owned_sentinel.sentinels  # type: ignore[attr-defined]
        sentinel_pool = sentinel.connection_pool
        assert issubclass(sentinel_pool.connection_class, SSLConnection)
        assert sentinel_pool.connection_kwargs["password"] is None  # its own, unset here
    finally:
        client.close()


async def test_async_sentinel_clients_speak_tls_to_the_master(tmp_path: Path) -> None:
    """The asyncio master's pool is ILS's own (it follows a fail-over at once); its
    connections must still be TLS ones."""
    ca = tmp_path / "ca.crt"
    ca.write_text("not read until a connection is made")
    connection = RedisConnection(sentinels=(("s1", 26379),), tls=RedisTls(ca_file=ca))
    client = async_client(connection, connect_timeout_s=1, socket_timeout_s=1)
    try:
        pool = client.connection_pool
        assert issubclass(pool.connection_class, AsyncSSLConnection)
        assert pool.connection_kwargs["ssl_ca_certs"] == str(ca)
    finally:
        await client.aclose()

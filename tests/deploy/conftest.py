"""Fixtures for deployment shapes: TLS Redis, Sentinel groups, job systems on them.

* ``certificates``: a test CA with a server and a client certificate (``openssl``).
* ``tls_redis``: a ``redis-server`` speaking only TLS (``--port 0``) that demands a
  client certificate (``--tls-auth-clients yes``); ``tls_redis.port``.
* ``make_sentinels(sentinels=3, quorum=2, data_args=())``: a started
  :class:`SentinelGroup`.

Every process is stopped (or reaped after a SIGKILL) when the test ends. Like the rest
of the suite, a missing binary fails the test unless ``ILS_TEST_ALLOW_MISSING_SERVICES=1``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

from ils.jobs.stores.redis.connect import sync_client
from ils.redis_settings import RedisConnection, RedisTls
from tests.conftest import _missing, free_port
from tests.deploy.servers import Certificates, Process, SentinelGroup, answers, make_certificates


def _need(*binaries: str) -> None:
    for binary in binaries:
        if shutil.which(binary) is None:
            _missing(f"{binary} (apt-get install redis-server redis-sentinel openssl)")


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    _need("openssl")
    return make_certificates(tmp_path / "pki")


@dataclass(frozen=True)
class TlsRedis:
    port: int
    certificates: Certificates

    @property
    def url(self) -> str:
        return f"rediss://127.0.0.1:{self.port}/0"

    def connection(self, *, client_cert: bool = True) -> RedisConnection:
        certs = self.certificates
        tls = RedisTls(
            ca_file=certs.ca,
            cert_file=certs.client_cert if client_cert else None,
            key_file=certs.client_key if client_cert else None,
        )
        return RedisConnection(url=self.url, tls=tls)


@pytest.fixture
def tls_redis(tmp_path: Path, certificates: Certificates) -> Iterator[TlsRedis]:
    """A TLS-only Redis that refuses clients without a certificate of the test CA."""
    _need("redis-server")
    server = TlsRedis(free_port(), certificates)
    directory = tmp_path / "tls-redis"
    process = Process(
        directory,
        [
            "redis-server", "--port", "0", "--bind", "127.0.0.1",
            "--tls-port", str(server.port),
            "--tls-cert-file", str(certificates.server_cert),
            "--tls-key-file", str(certificates.server_key),
            "--tls-ca-cert-file", str(certificates.ca),
            "--tls-auth-clients", "yes",
            "--dir", str(directory), "--save", "", "--appendonly", "no",
        ],
    )  # fmt: skip
    ready = partial(
        answers,
        partial(sync_client, server.connection(), connect_timeout_s=1, socket_timeout_s=1),
    )
    try:
        process.start(ready)
        yield server
    finally:
        process.stop()


SentinelFactory = Callable[..., SentinelGroup]


@pytest.fixture
def make_sentinels(tmp_path: Path) -> Iterator[SentinelFactory]:
    """``make_sentinels(sentinels=3, quorum=2)``: a master, a replica and sentinels, all
    started and watching each other; stopped after the test."""
    _need("redis-server", "redis-sentinel")
    groups: list[SentinelGroup] = []

    def make(sentinels: int = 3, quorum: int = 2, data_args: Sequence[str] = ()) -> SentinelGroup:
        directory = tmp_path / f"sentinel-group{len(groups)}"
        group = SentinelGroup(directory, sentinels, quorum, data_args=data_args)
        groups.append(group)
        group.start()
        return group

    try:
        yield make
    finally:
        for group in groups:
            group.stop()

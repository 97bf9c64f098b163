"""Redis as deployments run it, started by the tests: TLS servers and Sentinel groups.

* ``make_certificates(directory)``: a CA, a server certificate (127.0.0.1 and
  localhost) and a client certificate, made with ``openssl``.
* ``Process``: one ``redis-server`` / ``redis-sentinel`` child process (never
  daemonized, so it can be SIGKILLed and is always reaped); ``start`` waits on a
  readiness check, never a fixed time.
* ``SentinelGroup``: a master, a replica and 1-3 sentinels on free ports, ready when
  every sentinel sees the replica and its peers (a fail-over is possible then).

Everything started is stopped by the fixtures in ``conftest.py``, whatever happens.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import redis

from tests.conftest import free_port

SERVICE = "mymaster"
T = TypeVar("T")


def wait_for(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.02) -> None:
    """Poll ``check`` until it holds; ``AssertionError`` naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(interval)


@dataclass(frozen=True)
class Certificates:
    """PEM files of a test PKI."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certificates(directory: Path) -> Certificates:
    """A CA and two certificates it signed (P-256 keys: fast to make)."""
    directory.mkdir(parents=True, exist_ok=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl(
        "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
        "-subj", "/CN=ILS test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip
    for name, extensions in (
        ("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth"),
        ("client", "extendedKeyUsage=clientAuth"),
    ):
        (directory / f"{name}.ext").write_text(extensions + "\n")
        _openssl(
            "req", "-new", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
            "-subj", f"/CN=ils-test-{name}", cwd=directory,
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-out", f"{name}.crt",
            "-extfile", f"{name}.ext", cwd=directory,
        )  # fmt: skip
    return Certificates(
        ca=directory / "ca.crt",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
        client_cert=directory / "client.crt",
        client_key=directory / "client.key",
    )


class Process:
    """A Redis (or Sentinel) child process with its log in its own directory."""

    def __init__(self, directory: Path, command: Sequence[str]) -> None:
        self.directory = directory
        self.command = list(command)
        self.log_path = directory / "redis.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, ready: Callable[[], bool], timeout: float = 15.0) -> None:
        """Start and wait until ``ready()``; a process that exits fails at once."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._process = subprocess.Popen(
            [*self.command, "--daemonize", "no", "--logfile", str(self.log_path)],
            cwd=self.directory,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def up() -> bool:
            if not self.running:
                raise AssertionError(f"{self.command[0]} exited:\n{self.log()}")
            return ready()

        wait_for(up, timeout, f"{self.command[0]} in {self.directory} ready\n{self.log()}")

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log(self) -> str:
        """The last lines of the process's log (for assertion messages)."""
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL and reap: no shutdown, no final write."""
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait(10)

    def stop(self) -> None:
        """SIGTERM, SIGKILL when it takes more than 10 s; safe to call twice."""
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()


def answers(make: Callable[[], redis.Redis]) -> bool:
    """Whether a client from ``make`` gets PONG (any connection or TLS error: not yet)."""
    try:
        with make() as client:
            return bool(client.ping())
    except (redis.RedisError, OSError):
        return False


def plain_client(port: int) -> redis.Redis:
    """A short-timeout client of a plain Redis or Sentinel on 127.0.0.1."""
    return redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1, decode_responses=True)


def ask(port: int, command: Callable[[redis.Redis], T]) -> T | None:
    """``command`` on a fresh client of ``port``; ``None`` when it cannot be reached."""
    try:
        with plain_client(port) as client:
            return command(client)
    except (redis.RedisError, OSError):
        return None


class SentinelGroup:
    """A master, a replica and sentinels watching them as ``mymaster``.

    ``down_after_ms`` is how long the master must be unreachable before a sentinel
    calls it down; a quorum of ``quorum`` sentinels then fails over to the replica.
    ``data_args`` go to both data servers (``("--min-replicas-to-write", "1")``).
    """

    def __init__(
        self,
        directory: Path,
        sentinels: int = 3,
        quorum: int = 2,
        down_after_ms: int = 500,
        data_args: Sequence[str] = (),
    ) -> None:
        self.directory = directory
        self.data_args = tuple(data_args)
        self.quorum = quorum
        self.down_after_ms = down_after_ms
        self.master_port, self.replica_port = free_port(), free_port()
        self.sentinel_ports = [free_port() for _ in range(sentinels)]
        self.master = self._server("master", self.master_port)
        self.replica = self._server(
            "replica", self.replica_port, "--replicaof", "127.0.0.1", str(self.master_port)
        )
        self.sentinels = [self._sentinel(i, port) for i, port in enumerate(self.sentinel_ports)]

    @property
    def processes(self) -> list[Process]:
        return [self.master, self.replica, *self.sentinels]

    @property
    def sentinels_setting(self) -> str:
        """The ``ILS_REDIS_SENTINELS`` value."""
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    def _server(self, name: str, port: int, *extra: str) -> Process:
        directory = self.directory / name
        return Process(
            directory,
            [
                "redis-server", "--port", str(port), "--bind", "127.0.0.1",
                "--dir", str(directory), "--save", "", "--appendonly", "no",
                # A replica syncs at once, not after the 5 s wait for more replicas.
                "--repl-diskless-sync-delay", "0", *self.data_args, *extra,
            ],
        )  # fmt: skip

    def _sentinel(self, index: int, port: int) -> Process:
        directory = self.directory / f"sentinel{index}"
        directory.mkdir(parents=True)
        config = directory / "sentinel.conf"  # rewritten by the sentinel as it learns
        config.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {directory}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {self.master_port} {self.quorum}\n"
            f"sentinel down-after-milliseconds {SERVICE} {self.down_after_ms}\n"
            f"sentinel failover-timeout {SERVICE} 5000\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )
        return Process(directory, ["redis-sentinel", str(config)])

    def start(self) -> None:
        """Start everything and wait until a fail-over could happen."""
        self.master.start(partial(answers, partial(plain_client, self.master_port)))
        self.replica.start(partial(self._link_up, self.replica_port))
        for process, port in zip(self.sentinels, self.sentinel_ports, strict=True):
            process.start(partial(answers, partial(plain_client, port)))
        peers = len(self.sentinels) - 1
        for port in self.sentinel_ports:
            wait_for(
                partial(self._sees_all, port, peers),
                20,
                f"sentinel {port} sees the replica and {peers} peers",
            )
        self.wait_promotable()

    def stop(self) -> None:
        """Stop every process (those already killed are only reaped)."""
        for process in self.processes:
            process.stop()

    @staticmethod
    def _link_up(port: int) -> bool:
        info: dict[str, Any] | None = ask(port, lambda c: c.info("replication"))
        return info is not None and info.get("master_link_status") == "up"

    @staticmethod
    def _sees_all(port: int, peers: int) -> bool:
        state: dict[str, Any] | None = ask(port, lambda c: c.sentinel_master(SERVICE))
        return (
            state is not None
            and int(state["num-slaves"]) >= 1
            and int(state["num-other-sentinels"]) >= peers
        )

    @staticmethod
    def master_port_by(sentinel_port: int) -> int | None:
        """The master's port as one sentinel names it now."""
        address = ask(sentinel_port, lambda c: c.sentinel_get_master_addr_by_name(SERVICE))
        return int(address[1]) if address else None

    def wait_promotable(self, timeout: float = 20.0) -> None:
        """Until every sentinel has the replica's own report, linked to the master: a
        ``SENTINEL FAILOVER`` sooner answers NOGOODSLAVE."""

        def ready(port: int) -> bool:
            replicas: list[dict[str, Any]] | None = ask(port, lambda c: c.sentinel_slaves(SERVICE))
            return any(
                r.get("flags") == "slave" and r.get("master-link-status") == "ok"
                for r in replicas or []
            )

        for port in self.sentinel_ports:
            wait_for(partial(ready, port), timeout, f"sentinel {port} can promote the replica")

    def role(self, port: int) -> str | None:
        """``master`` or ``slave`` as the server on ``port`` says; ``None`` if down."""
        info: dict[str, Any] | None = ask(port, lambda c: c.info("replication"))
        return None if info is None else str(info.get("role"))

    def wait_failed_over(self, timeout: float = 30.0) -> None:
        """Until every sentinel names the replica as master and it accepts writes."""

        def promoted() -> bool:
            if any(self.master_port_by(p) != self.replica_port for p in self.sentinel_ports):
                return False
            return self.role(self.replica_port) == "master"

        wait_for(promoted, timeout, "fail-over to the replica", interval=0.05)

    def wait_switched(self, timeout: float = 30.0) -> None:
        """Until every sentinel's own state (``SENTINEL MASTER``, which clients and the
        master watch read) names the replica. It follows ``wait_failed_over``: the
        sentinels answer ``get-master-addr-by-name`` with the promoted replica while
        the fail-over is still under way, and switch their state only at its end."""

        def switched(port: int) -> bool:
            state: dict[str, Any] | None = ask(port, lambda c: c.sentinel_master(SERVICE))
            return state is not None and int(state["port"]) == self.replica_port

        for port in self.sentinel_ports:
            wait_for(partial(switched, port), timeout, f"sentinel {port} switched", interval=0.05)

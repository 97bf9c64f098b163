"""A private ``redis-server`` process that a test may kill, freeze and restart.

``tests/conftest.py`` has a ``RedisServer`` too, but it daemonizes Redis (no process of
ours to SIGKILL or SIGSTOP) and stops it only politely; this one runs ``redis-server``
as a child process (``--daemonize no``) so a test can crash it for real. It reuses
``free_port`` from there.

Usage::

    with PrivateRedis(tmp_path / "redis") as server:    # started, ready, AOF on
        client = Redis.from_url(server.url)
        ...
        server.kill9()        # SIGKILL: no shutdown, no final fsync
        server.restart()      # same port, same directory: reloads the append-only file
        server.pause()        # SIGSTOP: connections stay open, nothing is answered
        server.resume()       # SIGCONT
        server.stop()         # SIGTERM, wait for a clean exit

Durability: ``appendfsync="always"`` (the default here) fsyncs every write before the
reply. With ``"everysec"`` Redis still *writes* each command to the AOF (page cache)
before replying, so a SIGKILL of the process loses nothing acknowledged in practice;
only a crash of the machine (or an fsync Redis postponed while the disk is slow) can
lose up to about a second. A process kill is therefore not a way to provoke AOF data
loss.

Readiness (``wait_ready``) means a ``PING`` answered ``+PONG``: the append-only file
is loaded (Redis answers ``-LOADING`` until then).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from tests.conftest import free_port

__all__ = ["PrivateRedis", "redis_ping"]


def redis_ping(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """True when a Redis server at ``host:port`` answers ``PING`` with ``+PONG``."""
    try:
        with socket.create_connection((host, port), timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class PrivateRedis:
    """A ``redis-server`` child process on 127.0.0.1 with the append-only file on.

    Args:
        directory: Where Redis keeps its files (created if missing): the AOF
            (``appendonlydir/``) and ``redis.log``.
        port: The port; a free one when omitted. It stays the same across restarts.
        appendfsync: ``"always"`` or ``"everysec"`` (see the module docstring).
        extra: More ``redis-server`` arguments, e.g. ``("--maxmemory", "10mb")``.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        port: int | None = None,
        appendfsync: Literal["always", "everysec"] = "always",
        extra: tuple[str, ...] = (),
    ) -> None:
        self.directory = Path(directory)
        self.port = port if port is not None else free_port()
        self.appendfsync = appendfsync
        self.extra = extra
        self._process: subprocess.Popen[bytes] | None = None
        self._paused = False

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The process id while the process exists (also while paused)."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    @property
    def running(self) -> bool:
        """The process exists (it may be paused)."""
        return self.pid is not None

    @property
    def log_path(self) -> Path:
        return self.directory / "redis.log"

    def log(self) -> str:
        """Redis's log file so far (for assertion messages)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 10.0) -> Self:
        """Start the process and wait until it answers ``PING`` (AOF loaded)."""
        if self.running:
            raise RuntimeError(f"redis on {self.port} is already running")
        self.directory.mkdir(parents=True, exist_ok=True)
        self._process = subprocess.Popen(
            [
                "redis-server",
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.directory),
                "--daemonize", "no",
                "--appendonly", "yes",
                "--appendfsync", self.appendfsync,
                "--save", "",
                "--logfile", str(self.log_path),
                *self.extra,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self._paused = False
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.kill9()
            raise
        return self

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Wait until the server answers ``PING`` with ``+PONG``.

        Raises:
            RuntimeError: the process exited, or it did not answer in ``timeout``.
        """
        deadline = time.monotonic() + timeout
        while not redis_ping(self.port):
            process = self._process
            if process is None or process.poll() is not None:
                raise RuntimeError(f"redis on {self.port} exited:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis on {self.port} not ready:\n{self.log()[-3000:]}")
            time.sleep(0.01)

    def kill9(self) -> None:
        """SIGKILL the process and reap it (no shutdown, no final fsync)."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        process.wait(10)
        self._paused = False

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (Redis fsyncs the AOF and exits), SIGKILL if it takes ``timeout``."""
        process = self._process
        if process is None or process.poll() is not None:
            self._paused = False
            return
        if self._paused:
            self.resume()
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()

    def restart(self, timeout: float = 10.0) -> Self:
        """Start again on the same port and directory (after ``kill9()`` or ``stop()``;
        a running server is stopped first). Returns once the AOF is reloaded."""
        if self.running:
            self.stop()
        return self.start(timeout)

    def pause(self) -> None:
        """SIGSTOP: the process freezes; its sockets stay open, the kernel still
        accepts connections and buffers bytes, nothing is answered."""
        process = self._process
        if process is None or process.poll() is not None:
            raise RuntimeError(f"redis on {self.port} is not running")
        process.send_signal(signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        """SIGCONT after ``pause()``."""
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGCONT)
        self._paused = False

    @property
    def paused(self) -> bool:
        return self._paused

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

"""Load to put on the machine, a process or the test's own event loop.

* :class:`CpuHogs`: N processes each spinning ``while True: pass`` (one core each),
  killed (SIGKILL) and reaped when the ``with`` block ends, whatever happens in it::

      with CpuHogs(2) as hogs:          # or CpuHogs() for one per CPU
          await eventually(hogs.all_busy)  # each has used CPU time (Linux /proc)
          ...

* :func:`frozen` / :func:`sigstop` / :func:`sigcont`: freeze a process (a real
  ``redis-server``, a worker) with SIGSTOP and always thaw it with SIGCONT::

      with frozen(server.pid):
          ...  # its sockets stay open, nothing is answered

* :class:`LoopStalls`: block the *current* event loop (``time.sleep`` inside it) for
  ``for_ms`` every ``every_s``, to stand for a CPU-bound handler or a blocking call in
  the process under test; ``stalls`` counts them::

      async with LoopStalls(every_s=0.5, for_ms=200) as stalls:
          ...

Everything here is cleaned up on exit: no process, task or signal state outlives the
block.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Self

__all__ = ["CpuHogs", "LoopStalls", "cpu_seconds", "frozen", "sigcont", "sigstop"]

_HOG_CODE = "while True: pass"


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process from ``/proc`` (None where unavailable)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return None
    # Fields after the command: state is [0], utime [11], stime [12] (in clock ticks).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuHogs:
    """``count`` busy-looping Python processes (default: one per CPU).

    Args:
        count: How many processes.
        nice: Added niceness (0 = compete with the test on equal terms).
    """

    def __init__(self, count: int | None = None, *, nice: int = 0) -> None:
        self.count = count if count is not None else os.cpu_count() or 1
        self.nice = nice
        self._processes: list[subprocess.Popen[bytes]] = []

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self._processes]

    def start(self) -> Self:
        """Start the processes (kills any started so far if one fails to start)."""
        try:
            for _ in range(self.count - len(self._processes)):
                process = subprocess.Popen(
                    [sys.executable, "-c", _HOG_CODE],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                self._processes.append(process)
                if self.nice:
                    priority = os.getpriority(os.PRIO_PROCESS, process.pid)
                    os.setpriority(os.PRIO_PROCESS, process.pid, priority + self.nice)
        except BaseException:
            self.stop()
            raise
        return self

    def all_busy(self, min_cpu_s: float = 0.05) -> bool:
        """Every process is alive and has used ``min_cpu_s`` of CPU (always True where
        ``/proc`` is missing)."""
        for process in self._processes:
            if process.poll() is not None:
                return False
            used = cpu_seconds(process.pid)
            if used is not None and used < min_cpu_s:
                return False
        return True

    def stop(self) -> None:
        """SIGKILL and reap every process."""
        processes, self._processes = self._processes, []
        for process in processes:
            if process.poll() is None:
                process.kill()
        for process in processes:
            process.wait(10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def sigstop(pid: int) -> None:
    """Freeze process ``pid``."""
    os.kill(pid, signal.SIGSTOP)


def sigcont(pid: int) -> None:
    """Thaw process ``pid`` (harmless if it was not frozen or is gone)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGCONT)


@contextlib.contextmanager
def frozen(pid: int) -> Iterator[None]:
    """SIGSTOP ``pid`` for the block; SIGCONT on the way out, whatever happens."""
    sigstop(pid)
    try:
        yield
    finally:
        sigcont(pid)


class LoopStalls:
    """Block the running event loop for ``for_ms`` every ``every_s`` seconds.

    A task of the current loop calls ``time.sleep`` (the loop runs nothing else in
    the meantime), so everything on that loop (timers, heartbeats, lock renewals,
    I/O) stalls like it would behind a CPU-bound handler. Use as ``async with``.
    """

    def __init__(self, every_s: float, for_ms: float) -> None:
        if for_ms <= 0 or for_ms / 1000 >= every_s:
            raise ValueError("need 0 < for_ms / 1000 < every_s")
        self.every_s = every_s
        self.for_s = for_ms / 1000
        self.stalls = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        while True:
            await asyncio.sleep(max(0.0, start + (self.stalls + 1) * self.every_s - loop.time()))
            self.stalls += 1
            time.sleep(self.for_s)  # noqa: ASYNC251 - blocking the loop is the point

    async def __aenter__(self) -> Self:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

"""CPU-bound work off the event loop: a lazily started, lower-priority process pool.

Drawing a PDF or fitting a few hundred forecasting models is pure CPU work in
Python; on the event loop it would hold up lock renewal, heartbeats and every other
job of the process for its whole duration, and a thread would not help because of
the GIL. :class:`CpuPool` runs such calls in worker processes instead:

* created with the first call, so a process that never needs it starts none;
* ``forkserver`` start (``spawn`` where there is none): forking a process that runs
  an event loop and driver threads can copy a held lock into the child;
* pool processes run at a lower CPU priority (``nice``, 10 by default): this work
  is never urgent, while the web requests and job bookkeeping of the parent process
  are; on a machine with few cores an un-niced PDF pool doubled the p99 of
  ``POST /api/orders`` (bench/orders.py);
* each call has a timeout; a process that dies (out of memory, killed) breaks the
  pool, which is replaced, and the call raises :class:`CpuPoolError` so the job fails
  for a retry;
* numerical libraries in pool processes run single-threaded (``OPENBLAS_NUM_THREADS``
  and its kin, unless set already): the pool already has a process per core, and
  each process starting a BLAS thread per core on top doubled the forecast job's
  time on two cores (bench/ai.py: fitting 1,000 products 11.2 s -> 5.6 s);
* :meth:`close` shuts the processes down (workers call it when the job system closes).

Used by the PDF worker (rendering) and the AI worker (model fitting); a worker never
imports another worker, so the pool lives beside them rather than in either.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Final, ParamSpec, TypeVar

from ils.errors import ILSError

P = ParamSpec("P")
T = TypeVar("T")


class CpuPoolError(ILSError):
    """A pool process died or took too long; the call may succeed when retried."""


def _start_process(nice: int, warm_up: Callable[[], None] | None) -> None:
    """Initialise a pool process: lower its priority, then warm its libraries up."""
    if nice:
        # Not permitted (a container's seccomp profile, say): run at normal priority.
        with contextlib.suppress(OSError):
            os.nice(nice)
    if warm_up is not None:
        warm_up()


#: Thread-count variables of the BLAS and OpenMP runtimes numpy may load.
THREAD_VARIABLES: Final = (
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def _single_threaded_children() -> None:
    """Make pool processes start with one BLAS thread each.

    The runtimes read these variables once, when they load, and pool processes
    inherit the environment of the process (or fork server) that starts them, so
    they must be set before the first pool starts: an initializer would run after
    the call's pickled function has imported numpy. Variables already set (by an
    operator) are left as they are; this process's own runtime is loaded already
    and keeps its threads.
    """
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, "1")


def _start_method() -> str:
    methods = multiprocessing.get_all_start_methods()
    return "forkserver" if "forkserver" in methods else "spawn"


class CpuPool:
    """Runs picklable calls in a lazily started pool of ``size`` processes.

    Args:
        size: processes in the pool.
        timeout_s: longest a call may take before the pool is replaced.
        nice: how much lower the pool's CPU priority is than the parent's.
        warm_up: a module-level function each process runs once at start (imports,
            font caches), so the first real call is not the slow one.
        what: names the work in error messages ("rendering", "forecasting").
    """

    def __init__(
        self,
        size: int,
        *,
        timeout_s: float = 120.0,
        nice: int = 10,
        warm_up: Callable[[], None] | None = None,
        what: str = "the computation",
    ) -> None:
        self.size = size
        self.timeout_s = timeout_s
        self.nice = nice
        self.what = what
        self._warm_up = warm_up
        self._executor: ProcessPoolExecutor | None = None
        # close() may run from a SQLAlchemy event or atexit, not only the loop thread.
        self._lock = threading.Lock()

    @property
    def started(self) -> bool:
        """Whether processes are running."""
        return self._executor is not None

    def _pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                _single_threaded_children()
                self._executor = ProcessPoolExecutor(
                    max_workers=self.size,
                    mp_context=multiprocessing.get_context(_start_method()),
                    initializer=_start_process,
                    initargs=(self.nice, self._warm_up),
                )
            return self._executor

    async def run(self, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``func(*args, **kwargs)`` in a pool process (a module-level ``func``;
        arguments and result must pickle).

        Raises:
            CpuPoolError: the process died or the call exceeded ``timeout_s``.
        """
        executor = self._pool()
        loop = asyncio.get_running_loop()
        try:
            future = loop.run_in_executor(executor, functools.partial(func, *args, **kwargs))
            return await asyncio.wait_for(future, self.timeout_s)
        except BrokenProcessPool as exc:
            self._discard(executor)
            message = f"a process died during {self.what}; the pool was restarted"
            raise CpuPoolError(message) from exc
        except TimeoutError as exc:
            # The process may be stuck: replace the pool rather than reuse it.
            self._discard(executor)
            raise CpuPoolError(f"{self.what} took more than {self.timeout_s:g}s") from exc

    def _discard(self, executor: ProcessPoolExecutor) -> None:
        """Drop a broken or stuck pool and stop its processes.

        ``shutdown`` alone would leave a stuck process running its call for as long
        as it likes; the executor keeps its processes in a private mapping, so they
        are looked up defensively and terminated.
        """
        with self._lock:
            if self._executor is executor:
                self._executor = None
        processes = getattr(executor, "_processes", None) or {}
        for process in list(processes.values()):
            with contextlib.suppress(Exception):
                process.terminate()
        executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Shut the processes down (idempotent)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

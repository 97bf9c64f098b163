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
* :meth:`close` shuts the processes down (workers call it when the job system closes);
* pool processes end with the ILS process however it ends, SIGKILL included (a
  process manager's kill after SIGTERM, during the graceful shutdown): each watches
  a lifeline pipe whose write end only the ILS process holds (see
  :func:`_watch_parent`). Without it a pool process waited on its call queue for
  ever, and kept the fork server and resource tracker alive with it.

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
from dataclasses import KW_ONLY, dataclass
from multiprocessing.connection import Connection, Pipe
from typing import Final, ParamSpec, TypeVar

from ils.errors import ILSError

P = ParamSpec("P")
T = TypeVar("T")


class CpuPoolError(ILSError):
    """A pool process died or took too long; the call may succeed when retried."""


#: How often a pool process also checks that the ILS process's pid still exists.
PARENT_CHECK_S: Final = 5.0
#: Exit status of a pool process that ended because the ILS process had ended.
ORPHANED_EXIT: Final = 70


def _process_exists(pid: int) -> bool:
    """Whether ``pid`` still names a process (``True`` when that cannot be told)."""
    if os.name != "posix":
        # On Windows os.kill(pid, 0) would terminate the process: the lifeline decides.
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _watch_parent(lifeline: Connection, parent_pid: int) -> None:
    """End this pool process as soon as the ILS process (``parent_pid``) has ended.

    Runs in a daemon thread of each pool process. The ILS process never writes to
    ``lifeline``; the kernel closes its write end when it exits, however it exits, so
    the pipe becomes readable at EOF at once, with no race: had the ILS process died
    before this thread started, the EOF is already there. The pid check every
    :data:`PARENT_CHECK_S` is a fallback for a write end that leaked into a process
    forked (without exec) from the ILS process, which would hold the pipe open.

    Neither ``getppid()`` nor ``PR_SET_PDEATHSIG`` can do this: with ``forkserver``
    the parent of a pool process is the fork server, which lives on while any pool
    process does (each holds the fork server's own "alive" pipe), and with ``spawn``
    on Linux the death signal would follow whichever thread happened to start the
    process (a thread-pool thread that ends when idle), killing healthy processes.
    ``multiprocessing.parent_process()`` is no help either: under ``forkserver`` its
    sentinel is the preparation-data pipe, at EOF as soon as the process has started.

    ``os._exit`` ends the process even while its main thread is in a call (drawing a
    PDF for nobody): there is no one left to take the result.
    """
    while True:
        try:
            if lifeline.poll(PARENT_CHECK_S):
                lifeline.recv_bytes()  # nothing is ever sent: readable means EOF
        except (EOFError, OSError):
            break
        if not _process_exists(parent_pid):
            break
    os._exit(ORPHANED_EXIT)


def _start_process(
    nice: int,
    warm_up: Callable[[], None] | None,
    lifeline: Connection | None = None,
    parent_pid: int | None = None,
) -> None:
    """Initialise a pool process: tie its life to the ILS process, lower its priority,
    then warm its libraries up.

    The watch starts first, so a parent that dies during a slow warm-up is noticed.
    """
    if lifeline is not None and parent_pid is not None:
        threading.Thread(
            target=_watch_parent,
            args=(lifeline, parent_pid),
            name="ils-cpu-pool-lifeline",
            daemon=True,
        ).start()
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


class _Lifeline:
    """A pipe between the ILS process and the processes of one executor.

    The ILS process keeps the write end, which is not inheritable (``os.pipe``) and is
    never sent anywhere, so only its exit or :meth:`close` closes it; the read end goes
    to each pool process in its initializer's arguments (``forkserver`` and ``spawn``
    pass it over a socket or by number when the process starts, later starts
    included, so the ILS process keeps its own copy for as long as the executor).
    """

    def __init__(self) -> None:
        self.reader, self._writer = Pipe(duplex=False)

    def close(self) -> None:
        """Close both ends: the executor's remaining processes exit."""
        self._writer.close()
        self.reader.close()


def _ready() -> int:
    """A call that only proves the process is up (its warm-up ran in the initializer)."""
    return os.getpid()


@dataclass(eq=False)
class CpuPool:
    """Runs picklable calls in a lazily started pool of ``size`` processes.

    Attributes:
        size: processes in the pool.
        timeout_s: longest a call may take before the pool is replaced.
        nice: how much lower the pool's CPU priority is than the parent's.
        warm_up: a module-level function each process runs once at start (imports,
            font caches), so the first real call is not the slow one.
        what: names the work in error messages ("rendering", "forecasting").
    """

    size: int
    _: KW_ONLY
    timeout_s: float = 120.0
    nice: int = 10
    warm_up: Callable[[], None] | None = None
    what: str = "the computation"

    def __post_init__(self) -> None:
        self._executor: ProcessPoolExecutor | None = None
        self._warmed = False
        # One lifeline per executor: a discarded executor's may close while a new one runs.
        self._lifelines: dict[ProcessPoolExecutor, _Lifeline] = {}
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
                lifeline = _Lifeline()
                try:
                    executor = ProcessPoolExecutor(
                        max_workers=self.size,
                        mp_context=multiprocessing.get_context(_start_method()),
                        initializer=_start_process,
                        initargs=(self.nice, self.warm_up, lifeline.reader, os.getpid()),
                    )
                except BaseException:
                    lifeline.close()
                    raise
                self._executor = executor
                self._lifelines[executor] = lifeline
            return self._executor

    async def start(self) -> None:
        """Start every process now and let each run its warm-up, so the first real
        call is not the slow one (a cold pool's first document took 20-25 s: process
        start, imports and font caches at low priority). One call per process,
        submitted at once: the executor spawns a process for each call no idle
        process can take."""
        await asyncio.gather(*(self.run(_ready) for _ in range(self.size)))
        self._warmed = True

    @property
    def warmed(self) -> bool:
        """Whether :meth:`start` has brought every process up (until the pool is
        replaced or closed)."""
        return self._warmed and self._executor is not None

    def _cut_lifeline(self, executor: ProcessPoolExecutor) -> None:
        """Close ``executor``'s lifeline, once it is shut down (no process starts after)."""
        with self._lock:
            lifeline = self._lifelines.pop(executor, None)
        if lifeline is not None:
            lifeline.close()

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
            # Not wait_for, which on Python 3.11 loses a cancel that comes with the result.
            async with asyncio.timeout(self.timeout_s):
                return await future
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
                self._warmed = False
        processes = getattr(executor, "_processes", None) or {}
        for process in list(processes.values()):
            with contextlib.suppress(Exception):
                process.terminate()
        executor.shutdown(wait=False, cancel_futures=True)
        # Any process terminate() missed (starting up, say) exits on the EOF.
        self._cut_lifeline(executor)

    def close(self) -> None:
        """Shut the processes down (idempotent)."""
        with self._lock:
            executor, self._executor = self._executor, None
            self._warmed = False
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
            self._cut_lifeline(executor)

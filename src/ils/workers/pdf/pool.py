"""Rendering off the event loop: a process pool, or inline for tests and comparisons.

Drawing a PDF is pure CPU work in Python; on the event loop it would hold up lock
renewal, heartbeats and every other job of the process for its whole duration, and a
thread would not help because of the GIL. :class:`ProcessPoolRenderer` sends each
render to a pool of worker processes instead:

* created with the first document, so a process that never renders starts none;
* ``forkserver`` start (``spawn`` where there is none): forking a process that runs
  an event loop and driver threads can copy a held lock into the child;
* render processes run at a lower CPU priority (``nice``, 10 by default): drawing
  a PDF is never urgent, while the web requests and job bookkeeping of the parent
  process are; on a machine with few cores an un-niced pool doubled the p99 of
  ``POST /api/orders`` (bench/orders.py);
* each render has a timeout; a render process that dies (out of memory, killed)
  breaks the pool, which is replaced, and the job fails for a retry;
* :meth:`close` shuts the processes down; the PDF worker calls it when the job
  system closes (see ``ils.workers.pdf.register``).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol

from ils.workers.pdf.data import DocumentData
from ils.workers.pdf.errors import DocumentRenderError
from ils.workers.pdf.render import render_document, warm_up


class Renderer(Protocol):
    """Turns document data into PDF bytes."""

    async def render(self, kind: str, data: DocumentData) -> bytes:
        """The PDF of ``data`` as ``kind``."""
        ...

    def close(self) -> None:
        """Release processes or threads (idempotent)."""
        ...


class InlineRenderer:
    """Renders on the calling thread, blocking the event loop while it draws.

    For tests, for bench/pdf.py's single-process figures, and for measuring what
    rendering inside a request would cost; never for a worker.
    """

    async def render(self, kind: str, data: DocumentData) -> bytes:
        return render_document(kind, data)

    def close(self) -> None:
        return None


def _start_render_process(nice: int) -> None:
    """Initialise a render process: lower its priority, then warm reportlab up."""
    if nice:
        # Not permitted (a container's seccomp profile, say): render at normal priority.
        with contextlib.suppress(OSError):
            os.nice(nice)
    warm_up()


def _start_method() -> str:
    methods = multiprocessing.get_all_start_methods()
    return "forkserver" if "forkserver" in methods else "spawn"


class ProcessPoolRenderer:
    """Renders in a lazily started pool of ``size`` processes."""

    def __init__(self, size: int, *, timeout_s: float = 120.0, nice: int = 10) -> None:
        self.size = size
        self.timeout_s = timeout_s
        self.nice = nice
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
                self._executor = ProcessPoolExecutor(
                    max_workers=self.size,
                    mp_context=multiprocessing.get_context(_start_method()),
                    initializer=_start_render_process,
                    initargs=(self.nice,),
                )
            return self._executor

    async def render(self, kind: str, data: DocumentData) -> bytes:
        executor = self._pool()
        loop = asyncio.get_running_loop()
        try:
            future = loop.run_in_executor(executor, render_document, kind, data)
            return await asyncio.wait_for(future, self.timeout_s)
        except BrokenProcessPool as exc:
            self._discard(executor)
            raise DocumentRenderError("a render process died; the pool was restarted") from exc
        except TimeoutError as exc:
            # The process may be stuck: replace the pool rather than reuse it.
            self._discard(executor)
            raise DocumentRenderError(f"rendering took more than {self.timeout_s:.0f}s") from exc

    def _discard(self, executor: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is executor:
                self._executor = None
        executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

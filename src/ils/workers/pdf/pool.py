"""Rendering off the event loop: a process pool, or inline for tests and comparisons.

Drawing a PDF is pure CPU work; :class:`ProcessPoolRenderer` sends each render to a
:class:`~ils.workers.cpu.CpuPool` (lazily started, niced, with a timeout, replaced
when a process dies), warming reportlab up in each process. The PDF worker closes it
when the job system closes (see ``ils.workers.pdf.register``).
"""

from __future__ import annotations

from typing import Protocol

from ils.workers.cpu import CpuPool, CpuPoolError
from ils.workers.pdf.data import DocumentData
from ils.workers.pdf.errors import DocumentRenderError
from ils.workers.pdf.render import render_document, warm_up


class Renderer(Protocol):
    """Turns document data into PDF bytes."""

    async def render(self, kind: str, data: DocumentData) -> bytes:
        """The PDF of ``data`` as ``kind``."""
        ...

    async def start(self) -> None:
        """Be ready for the first document (start processes); a no-op when inline."""
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

    async def start(self) -> None:
        return None

    def close(self) -> None:
        return None


class ProcessPoolRenderer:
    """Renders in a lazily started pool of ``size`` processes."""

    def __init__(self, size: int, *, timeout_s: float = 120.0, nice: int = 10) -> None:
        self._pool = CpuPool(
            size, timeout_s=timeout_s, nice=nice, warm_up=warm_up, what="rendering"
        )

    @property
    def size(self) -> int:
        """Processes in the pool."""
        return self._pool.size

    @property
    def nice(self) -> int:
        """How much lower the render processes' priority is."""
        return self._pool.nice

    @property
    def started(self) -> bool:
        """Whether processes are running."""
        return self._pool.started

    @property
    def ready(self) -> bool:
        """Whether every process is up and warmed (see :meth:`start`)."""
        return self._pool.warmed

    async def start(self) -> None:
        try:
            await self._pool.start()
        except CpuPoolError as exc:
            raise DocumentRenderError(str(exc)) from exc

    async def render(self, kind: str, data: DocumentData) -> bytes:
        try:
            return await self._pool.run(render_document, kind, data)
        except CpuPoolError as exc:
            raise DocumentRenderError(str(exc)) from exc

    def close(self) -> None:
        self._pool.close()

"""The CPU pool: calls run in other processes, and a dead or stuck process is replaced."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from subprocess import STDOUT, Popen
from typing import Any

import pytest
from pydantic import BaseModel

from ils.jobs.job_types import InvoicePdf
from ils.jobs.registry import HandlerRegistry, JobContext
from ils.jobs.system import JobSystem
from ils.jobs.worker_context import WorkerContext
from ils.settings import Settings
from ils.testing import eventually
from ils.workers.cpu import CpuPool, CpuPoolError
from ils.workers.pdf.data import DocumentKind
from ils.workers.pdf.generate import DocumentGenerator
from ils.workers.pdf.samples import sample


def _pid_and_niceness(value: int) -> tuple[int, int, int]:
    return os.getpid(), os.nice(0), value * 2


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A terminated child not yet reaped is a zombie: gone for our purpose. The
    # process may also vanish between the two checks (ESRCH on read).
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


async def test_a_call_runs_in_a_lower_priority_process() -> None:
    pool = CpuPool(1, nice=5)
    assert not pool.started  # nothing before the first call
    try:
        pid, niceness, doubled = await pool.run(_pid_and_niceness, 21)
        assert pool.started
        assert doubled == 42
        assert pid != os.getpid()
        assert niceness >= os.nice(0) + 5
    finally:
        pool.close()
    assert not pool.started


async def test_a_dead_process_fails_the_call_and_the_next_call_gets_a_new_pool() -> None:
    pool = CpuPool(1, what="forecasting")
    try:
        with pytest.raises(CpuPoolError, match="died during forecasting"):
            await pool.run(_die)
        _, _, doubled = await pool.run(_pid_and_niceness, 2)
        assert doubled == 4
    finally:
        pool.close()


async def test_a_call_over_the_timeout_fails_and_the_pool_is_replaced() -> None:
    # The timeout covers a call's process start too, which takes seconds on a loaded
    # two-core machine (the process imports the workers): room for that, and still far
    # below the stuck call's 60 s.
    pool = CpuPool(1, timeout_s=10, what="rendering")
    try:
        first_pid, _, _ = await pool.run(_pid_and_niceness, 0)  # started: spawning is slow
        with pytest.raises(CpuPoolError, match="rendering took more than 10s"):
            await pool.run(_sleep, 60.0)
        assert not pool.started
        # The stuck process was stopped, not left sleeping.
        await eventually(
            lambda: not _alive(first_pid),
            5,
            interval=0.05,
            message=f"the timed-out call's process {first_pid} still runs after 5 s",
        )
        _, _, doubled = await pool.run(_pid_and_niceness, 3)
        assert doubled == 6
    finally:
        pool.close()


# -- pool processes end with the process that started them, however it ends -----------

ROOT = Path(__file__).resolve().parents[2]

#: Long enough for a loaded machine; the pool processes see their lifeline's EOF at once.
ORPHAN_DEADLINE_S = 15.0

#: A process that renders with the PDF worker's pool, as a worker does, then waits to
#: be killed. Run with ``-c``: a ``__main__`` with a path would be re-imported by the
#: fork server.
RENDER_AND_WAIT = """
import asyncio

from ils.workers.pdf.data import DocumentKind
from ils.workers.pdf.pool import ProcessPoolRenderer
from ils.workers.pdf.samples import sample


async def main() -> None:
    renderer = ProcessPoolRenderer(2)
    kind = DocumentKind.RECEIPT
    await asyncio.gather(*(renderer.render(kind.value, sample(kind)) for _ in range(2)))
    print("rendered", flush=True)
    await asyncio.sleep(3600)


asyncio.run(main())
"""


def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (pool processes, fork server, resource tracker).

    Read from /proc before ``pid`` is killed: afterwards its orphans belong to init.
    """
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # ended meanwhile
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found: set[int] = set()
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            if child not in found:
                found.add(child)
                pending.append(child)
    return {child for child in found if _alive(child)}


async def _wait_until_gone(pids: set[int]) -> None:
    """Wait until every one of ``pids`` has ended; ``AssertionError`` naming those
    still running after :data:`ORPHAN_DEADLINE_S`."""
    running = set(pids)

    def gone() -> bool:
        running.difference_update({pid for pid in running if not _alive(pid)})
        return not running

    await eventually(
        gone,
        ORPHAN_DEADLINE_S,
        interval=0.05,
        message=lambda: f"still running after {ORPHAN_DEADLINE_S} s: {sorted(running)}",
    )


def _kill_leftovers(pids: set[int]) -> None:
    """Stop what a failed run left behind (only pids this test saw start)."""
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def _start(args: list[str], output: Path, env: dict[str, str] | None = None) -> Popen[bytes]:
    """Start ``python args`` with its output in a file.

    Not a pipe: the pool processes inherit the output, and an orphan holding a pipe
    would keep a reader (asyncio's ``Process.wait`` among them) waiting for ever
    instead of letting the assertion fail.
    """
    with output.open("wb") as out:
        return Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=STDOUT,
        )


def _text(path: Path) -> str:
    return path.read_text(errors="replace")


async def _until(
    condition: Callable[[], bool], what: str, proc: Popen[bytes], output: Path
) -> None:
    """Wait for ``condition`` while ``proc`` runs (a minute at most)."""

    def met() -> bool:
        if condition():
            return True
        assert proc.poll() is None, f"exited before {what}:\n{_text(output)}"
        return False

    await eventually(
        met, 60, interval=0.05, message=lambda: f"no {what} in a minute:\n{_text(output)}"
    )


async def _kill(proc: Popen[bytes]) -> None:
    """SIGKILL ``proc`` and reap it."""
    if proc.poll() is None:
        proc.kill()
    await asyncio.to_thread(proc.wait, 30)


needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")


@needs_proc
async def test_pool_processes_end_when_their_process_is_killed(tmp_path: Path) -> None:
    output = tmp_path / "output.log"
    proc = _start(["-c", RENDER_AND_WAIT], output)
    pool: set[int] = set()
    try:
        await _until(lambda: "rendered" in _text(output), "render", proc, output)
        pool = _descendants(proc.pid)
        # Two pool processes at least, beside the fork server and resource tracker.
        assert len(pool) >= 3, pool
        await _kill(proc)
        await _wait_until_gone(pool)
    finally:
        await _kill(proc)
        _kill_leftovers(pool)


def register_render_then_wait(registry: HandlerRegistry, context: WorkerContext) -> None:
    """For ``ils worker --handlers``: the invoice job renders a sample with a render
    pool built as the PDF worker builds its own, writes "rendered" to
    ``ILS_TEST_RECORD`` and then runs until the process is killed, so a SIGTERM finds
    it running and the worker waits in its graceful shutdown."""
    generator = DocumentGenerator.for_context(context)

    async def close() -> None:
        generator.close()

    async def handle(payload: BaseModel, ctx: JobContext) -> dict[str, Any]:
        del payload, ctx
        kind = DocumentKind.INVOICE
        await generator.renderer.render(kind.value, sample(kind))
        await asyncio.to_thread(Path(os.environ["ILS_TEST_RECORD"]).write_text, "rendered\n")
        await asyncio.sleep(3600)
        return {}

    context.on_close(close)
    registry.replace(InvoicePdf, handle)  # in place of the PDF worker's (registered first)


@pytest.mark.slow
@needs_proc
async def test_worker_killed_during_its_graceful_shutdown_leaves_no_pool_process(
    tmp_path: Path,
) -> None:
    record = tmp_path / "record.log"
    log = tmp_path / "worker.log"
    env = {
        "ILS_DATA_DIR": str(tmp_path),
        "ILS_LOCAL_POLL_INTERVAL_MS": "20",
        "ILS_SHUTDOWN_GRACE_S": "60",
        "ILS_PDF__POOL_SIZE": "2",
        "ILS_TEST_RECORD": str(record),
    }
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        settings = Settings(_env_file=None)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    producer = await JobSystem.open(settings)
    pool: set[int] = set()
    worker: Popen[bytes] | None = None
    try:
        await producer.helpers.queue_invoice_pdf("inv-1")
        handlers = f"{__name__}:register_render_then_wait"
        args = ["-m", "ils", "worker", "--queues", "pdf", "--handlers", handlers]
        worker = _start(args, log, {**env, "COLUMNS": "200"})
        await _until(record.exists, "render", worker, log)
        pool = _descendants(worker.pid)
        assert len(pool) >= 2, pool  # a render process, the fork server (and tracker)
        worker.send_signal(signal.SIGTERM)
        # The worker now waits for the running job: kill it there, as systemd would.
        await _until(lambda: "stopping:" in _text(log), "graceful shutdown", worker, log)
        await _kill(worker)
        await _wait_until_gone(pool)
    finally:
        if worker is not None:
            await _kill(worker)
        _kill_leftovers(pool)
        await producer.close()

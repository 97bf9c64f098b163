"""Where a benchmarked server's time goes: SQLite statements, commits, garbage collection.

Loaded by Python at start-up from ``PYTHONPATH`` (``bench/users.py --time-server``
puts this folder there for the server and worker processes only). Inert unless
``BENCH_SERVER_TIMING`` names an output path; then the process appends a line to
``<path>.<pid>.jsonl`` every ``BENCH_SERVER_TIMING_EVERY_S`` seconds (2 by default; a
benchmark ends its server with a signal, so there is no clean exit to wait for):

- ``snapshots``: cumulative seconds and counts per statement (its first 80 characters),
  per commit, and per garbage collection generation, stamped on ``CLOCK_MONOTONIC``
  (the benchmark's clock) so a window's share is the difference of two snapshots;
- connections opened and closed, keyed by the calls that led there (which of the
  pool's paths: overflow returned, invalidated, ...);
- the process's SQLite write turn (``ils.db.transactions.WriteTurn``): how long
  requests (``urgent``) and background writers waited for it and held it, the
  background holders keyed by the function that asked;
  with ``BENCH_SERVER_YIELDS`` set, where a holder gives the loop up (a diagnostic);
- with ``BENCH_SERVER_STALLS`` set, each callback of the event loop that ran longer
  than the slow threshold, named by its task and the place its stack was sampled
  most often (``loop stall``);
- ``slow``: each call over ``BENCH_SERVER_TIMING_SLOW_MS`` (20) with its time: one of
  those on the event loop is a stall every request in flight waits for.

Why a ``sitecustomize`` and not an option of ILS: it wraps the SQLite driver and the
collector from outside, costs a few microseconds a statement, and must never ship in
the product. Its own cost must stay off the event loop: until 2026-12-07 it rewrote
its whole history every 2 s from a thread, and the loop's waits for the GIL that
thread held were most of the stalls it then reported (docs/performance.md).
"""

from __future__ import annotations

import gc
import json
import os
import sqlite3
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any


class Timings:
    """Cumulative time and count per kind of call, and the slow calls."""

    def __init__(self, path: str, slow_s: float) -> None:
        self.path = path
        self.slow_s = slow_s
        self.seconds: Counter[str] = Counter()
        self.cpu_seconds: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()
        self.slow: list[tuple[float, float, str]] = []
        self.lock = threading.Lock()

    def add(self, key: str, started: float, ended: float, cpu_s: float = 0.0) -> None:
        """One call from ``started`` to ``ended``, of which ``cpu_s`` on this thread's
        CPU (the rest waited: for the disk, or for the GIL another thread held)."""
        with self.lock:
            self.seconds[key] += ended - started
            self.cpu_seconds[key] += cpu_s
            self.counts[key] += 1
            if ended - started > self.slow_s:
                self.slow.append((started, ended - started, key))

    def count(self, key: str, number: int) -> None:
        """Add ``number`` to a count that has no time of its own (objects collected)."""
        with self.lock:
            self.counts[key] += number

    def write(self) -> None:
        """Append a snapshot of the totals, and the slow calls since the last one, as
        one line: a rewrite of the whole history every few seconds grew to megabytes
        of JSON, a thread holding the GIL for tens of milliseconds that the event loop
        waited for after every SQLite call (the tool made the stalls it was measuring)."""
        with self.lock:
            snapshot = {
                "at": time.monotonic(),
                "seconds": dict(self.seconds),
                "cpu_seconds": dict(self.cpu_seconds),
                "counts": dict(self.counts),
                # Taken with the counts: a call listed here is counted in them.
                "slow": self.slow,
            }
            self.slow = []
        with open(self.path, "a") as out:
            out.write(json.dumps(snapshot) + "\n")


def _timed_call(
    timings: Timings, key: str, call: Callable[..., Any], *args: Any, **kwargs: Any
) -> Any:
    """``call(*args, **kwargs)``, its wall and thread CPU time added to ``timings``
    under ``key`` (raised or not): the one measurement every wrapper here makes."""
    started, cpu = time.monotonic(), time.thread_time()
    try:
        return call(*args, **kwargs)
    finally:
        timings.add(key, started, time.monotonic(), time.thread_time() - cpu)


def _timed(timings: Timings, kind: str, call: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(self: Any, sql: str, *args: Any) -> Any:
        key = f"{kind} {' '.join(sql.split())[:80]}"
        return _timed_call(timings, key, call, self, sql, *args)

    return wrapper


def _callers(depth: int = 5) -> str:
    """The functions that led here (innermost first), past this module and sqlite3:
    enough to tell the pool's paths apart (overflow returned, invalidated, ...)."""
    frame = sys._getframe(2)
    names: list[str] = []
    while frame is not None and len(names) < depth:
        module = frame.f_code.co_filename.rsplit("/", 2)
        names.append(f"{module[-2]}/{module[-1]}:{frame.f_code.co_name}")
        frame = frame.f_back  # type: ignore[assignment]
    return " < ".join(names)


def _count_connections(timings: Timings, connection: type[sqlite3.Connection]) -> None:
    """Time each SQLite connection opened and closed, keyed by who asked."""
    opening = connection.__init__
    closing = connection.close

    def opened(self: sqlite3.Connection, *args: Any, **kwargs: Any) -> None:
        _timed_call(timings, f"connect from {_callers()}", opening, self, *args, **kwargs)

    def closed(self: sqlite3.Connection) -> None:
        _timed_call(timings, f"close from {_callers()}", closing, self)

    connection.__init__ = opened  # type: ignore[method-assign]
    connection.close = closed  # type: ignore[method-assign]


def _frame_name(frame: Any) -> str:
    """``file.py:function`` of a frame."""
    return f"{frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.f_code.co_name}"


def _holder() -> str:
    """The first function outside the transaction plumbing that asked for the turn."""
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        if not name.endswith(("contextlib.py", "transactions.py", "sitecustomize.py")):
            return _frame_name(frame)
        frame = frame.f_back  # type: ignore[assignment]
    return "?"


def _time_write_turn(timings: Timings) -> None:
    """Time each wait for and hold of the SQLite write turn, by who held it: the wait
    a request spends behind the workers' transactions is what its p99 is made of."""
    import asyncio

    from ils.db.transactions import WriteTurn

    acquire, release = WriteTurn._acquire, WriteTurn._release
    holding: dict[int, tuple[float, str]] = {}

    async def timed_acquire(self: WriteTurn, urgent: bool) -> None:
        kind = "urgent" if urgent else f"background {_holder()}"
        started = time.monotonic()
        await acquire(self, urgent)
        acquired = time.monotonic()
        timings.add(f"write turn wait {kind}", started, acquired)
        holding[id(asyncio.current_task())] = (acquired, kind)

    def timed_release(self: WriteTurn) -> None:
        held = holding.pop(id(asyncio.current_task()), None)
        if held is not None:
            timings.add(f"write turn held {held[1]}", held[0], time.monotonic())
        release(self)

    WriteTurn._acquire = timed_acquire  # type: ignore[method-assign]
    WriteTurn._release = timed_release  # type: ignore[method-assign]
    if os.environ.get("BENCH_SERVER_YIELDS"):
        _count_yields_holding(timings, holding)


def _suspended_at(coro: Any, depth: int = 6) -> str:
    """Where a suspended coroutine waits: the innermost ``depth`` frames of its chain."""
    frames = []
    while coro is not None:
        frame = next(
            (f for a in ("cr_frame", "gi_frame", "ag_frame") if (f := getattr(coro, a, None))),
            None,
        )
        if frame is None:
            break
        frames.append(f"{_frame_name(frame)}:{frame.f_lineno}")
        inner = next(
            (i for a in ("cr_await", "gi_yieldfrom", "ag_await") if (i := getattr(coro, a, None))),
            None,
        )
        if inner is not None and not hasattr(inner, "cr_frame") and "self" in frame.f_locals:
            # An async context manager's exit awaits its generator's asend(), which
            # hides the generator: follow ``self.gen`` instead.
            inner = getattr(frame.f_locals["self"], "gen", inner)
        coro = inner
    return " > ".join(frames[-depth:])


def _count_yields_holding(timings: Timings, holding: dict[int, tuple[float, str]]) -> None:
    """Count where a task holding the write turn gives the loop up (a diagnostic:
    it swaps asyncio's C tasks for the Python ones, which are slower). The holder's
    other writers wait a turn of the loop for each."""
    import asyncio.tasks

    task_class = asyncio.tasks._PyTask  # type: ignore[attr-defined]
    step = task_class._Task__step

    def counted_step(self: Any, *args: Any) -> None:
        step(self, *args)
        if not self.done() and id(self) in holding:
            now = time.monotonic()
            timings.add(f"write turn yield {_suspended_at(self._coro)}", now, now)

    task_class._Task__step = counted_step
    asyncio.tasks.Task = task_class  # type: ignore[misc]
    asyncio.Task = task_class  # type: ignore[misc]


def _outward(frame: Any, stop: Any = None) -> list[Any]:
    """``frame`` and its callers, innermost first, up to the frame running ``stop``."""
    frames = []
    while frame is not None and frame.f_code is not stop:
        frames.append(frame)
        frame = frame.f_back
    return frames


def _stack_at(frame: Any, loop_code: Any, task: Any, spawned_from: Any) -> tuple[str, str]:
    """What a stack runs: the task (its coroutine's name; else the outermost frame
    above the loop's ``loop_code``, a plain callback), and where it is: its innermost
    frame of ILS and its innermost frame. Code run through SQLAlchemy's greenlets
    starts in SQLAlchemy: ``spawned_from``, the frame that handed the call to the
    greenlet, is searched for the ILS frame then."""
    stack = _outward(frame, loop_code)
    ils = next(
        (
            _frame_name(f)
            for f in [*stack, *_outward(spawned_from)]
            if f"{os.sep}ils{os.sep}" in f.f_code.co_filename
        ),
        "",
    )
    inner = _frame_name(stack[0]) if stack else "?"
    root = _frame_name(stack[-1]) if stack else "?"
    if task is not None:
        root = getattr(task.get_coro(), "__qualname__", root)
    where = inner if ils in ("", inner) else f"{ils} .. {inner}"
    return root, where


def _sample_stalls(timings: Timings, threshold_s: float, every_s: float = 0.002) -> None:
    """Name what runs in each callback of the main thread's event loop that runs
    longer than ``threshold_s``: every request in flight waits for it.

    Wraps ``asyncio.events.Handle._run``, the standard loop's one way to run a
    callback or a task's step (uvloop's are not seen), to know when the current one
    began; a thread samples the main thread's stack every ``every_s`` while it runs
    past the threshold. A long callback is counted as ``loop stall <task> at
    <where>``: the task's coroutine, the place sampled most often (see
    :func:`_stack_at`), and the collector's share when it ran in it. A diagnostic:
    the wrapper costs about a microsecond a callback.
    """
    import asyncio.events
    import asyncio.tasks

    main = threading.main_thread().ident
    run = asyncio.events.Handle._run
    running_tasks = asyncio.tasks._current_tasks  # type: ignore[attr-defined]
    lock = threading.Lock()
    current = {"started": 0.0, "gc_started": 0.0, "gc_s": 0.0}
    loops: list[Any] = [None]  # the loop of the callback running now
    spawned: dict[Any, Any] = {}  # task -> the frame that called greenlet_spawn

    def track_spawns() -> None:
        """Wrap SQLAlchemy's ``greenlet_spawn`` where its modules call it (each holds
        it by name), to know which frame of a task a greenlet's code runs for."""
        defining = sys.modules.get("sqlalchemy.util._concurrency_py3k")
        if defining is None:
            return
        original = defining.greenlet_spawn  # never replaced there: the real one

        async def spawn(fn: Any, *args: Any, **kwargs: Any) -> Any:
            task = asyncio.tasks.current_task()
            previous = spawned.get(task)
            spawned[task] = sys._getframe(1)
            try:
                return await original(fn, *args, **kwargs)
            finally:
                if previous is None:
                    spawned.pop(task, None)
                else:
                    spawned[task] = previous

        for name, module in list(sys.modules.items()):
            calls = getattr(module, "greenlet_spawn", None)
            if name.startswith("sqlalchemy") and module is not defining and calls is original:
                module.greenlet_spawn = spawn  # type: ignore[attr-defined]

    places: Counter[tuple[str, str]] = Counter()

    def timed_run(self: Any) -> None:
        if threading.get_ident() != main:
            run(self)
            return
        if self._loop is not loops[0]:
            track_spawns()  # a new loop (the server's is the last): the app is imported
            loops[0] = self._loop
        started = time.monotonic()
        current["started"], current["gc_s"] = started, 0.0
        try:
            run(self)
        finally:
            ended = time.monotonic()
            with lock:  # samples are taken only past the threshold: mostly none
                current["started"] = 0.0
                seen = places.most_common(1) if places else []
                if seen:
                    places.clear()
            if ended - started > threshold_s:
                root, where = seen[0][0] if seen else ("?", "not sampled")
                collector = current["gc_s"] / (ended - started)
                note = f" (collector {collector:.0%})" if collector >= 0.1 else ""
                timings.add(f"loop stall {root} at {where}{note}", started, ended)

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if not current["started"] or threading.get_ident() != main:
            return
        if phase == "start":
            current["gc_started"] = time.monotonic()
        elif current["gc_started"]:
            current["gc_s"] += time.monotonic() - current["gc_started"]
            current["gc_started"] = 0.0

    def sample() -> None:
        while True:
            time.sleep(every_s)
            started = current["started"]
            if not started or time.monotonic() - started < threshold_s:
                continue
            task = running_tasks.get(loops[0])
            frame = sys._current_frames().get(main)  # type: ignore[arg-type]
            place = _stack_at(frame, run.__code__, task, spawned.get(task))
            with lock:
                if current["started"] == started:  # still the same callback
                    places[place] += 1

    asyncio.events.Handle._run = timed_run  # type: ignore[method-assign]
    gc.callbacks.append(on_gc)
    threading.Thread(target=sample, name="bench-server-stalls", daemon=True).start()


def _install(path: str) -> None:
    timings = Timings(path, float(os.environ.get("BENCH_SERVER_TIMING_SLOW_MS", "20")) / 1000)
    # Imported here: the product's module is only patched in a process that asked.
    from ils.db import sqlite_inline

    cursor = sqlite_inline.InlineCursor
    cursor.execute = _timed(timings, "execute", cursor.execute)  # type: ignore[method-assign]
    cursor.executemany = _timed(timings, "executemany", cursor.executemany)  # type: ignore[method-assign]
    commit = sqlite3.Connection.commit
    changes_at_commit: dict[int, int] = {}

    def timed_commit(self: sqlite3.Connection) -> None:
        # A read-only transaction's commit costs next to nothing: count those apart, or
        # they hide what a write costs. ``total_changes`` counts rows written so far.
        changes = self.total_changes
        wrote = changes != changes_at_commit.get(id(self), 0)
        changes_at_commit[id(self)] = changes
        _timed_call(timings, "COMMIT after writes" if wrote else "COMMIT", commit, self)

    sqlite_inline.InlineConnection.commit = timed_commit  # type: ignore[method-assign]
    _count_connections(timings, sqlite_inline.InlineConnection)
    collecting: dict[str, float] = {}

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collecting["at"] = time.monotonic()
        elif "at" in collecting:
            key = f"GC generation {info['generation']}"
            timings.add(key, collecting.pop("at"), time.monotonic())
            # Unreachable objects freed: what cycles cost. The rest of the pass's
            # objects were alive and moved to an older generation.
            timings.count(f"{key} collected", info["collected"])

    gc.callbacks.append(on_gc)
    _time_write_turn(timings)
    if os.environ.get("BENCH_SERVER_STALLS"):
        _sample_stalls(timings, timings.slow_s)
    every_s = float(os.environ.get("BENCH_SERVER_TIMING_EVERY_S", "2"))

    def keep_writing() -> None:
        while True:  # the first snapshot at once: a window from start-up subtracts zeros
            timings.write()
            time.sleep(every_s)

    threading.Thread(target=keep_writing, name="bench-server-timing", daemon=True).start()


if os.environ.get("BENCH_SERVER_TIMING"):
    _install(f"{os.environ['BENCH_SERVER_TIMING']}.{os.getpid()}.jsonl")

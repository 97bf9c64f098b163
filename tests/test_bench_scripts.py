"""The benchmarks that drive a real server still start (they are not run by CI).

``bench/orders.py`` lost its inline comparison without anyone noticing: the app of
``bench/inline_orders_app.py`` passed the job system where the e-mail worker had come
to take a ``WorkerContext``, and failed in its lifespan. These tests import every
server benchmark and run that app's lifespan, so such a change breaks a test instead.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
SCRIPTS = [
    "serving",
    "orders",
    "users",
    "notifications",
    "dashboard",
    "inline_orders_app",
    "request_cpu",
]


@pytest.fixture
def bench_on_path() -> Iterator[None]:
    """The folder on ``sys.path``, as ``python bench/<script>.py`` has it."""
    sys.path.insert(0, str(BENCH))
    try:
        yield
    finally:
        sys.path.remove(str(BENCH))
        support = ["users_support", "users_support.client", "users_support.procstat"]
        for name in [*SCRIPTS, *support, "users_support.timing"]:
            sys.modules.pop(name, None)


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_server_benchmark_imports(script: str, bench_on_path: None) -> None:
    module = importlib.import_module(script)
    assert module.__doc__


async def test_the_inline_order_app_starts(
    bench_on_path: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ILS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ILS_START_WORKERS", "false")
    app = importlib.import_module("inline_orders_app").make_app()
    async with app.router.lifespan_context(app):
        assert any(
            getattr(route, "path", None) == "/api/bench/orders-inline" for route in app.routes
        )


#: What a timed process runs: statements on ILS's SQLite engine, a transaction that
#: only reads and one that writes, one through the write turn, a full collection
#: that frees five cycles, then it waits for the timing file to show them.
TIMED_PROCESS = """
import asyncio, gc, os, pathlib, sys, time
from sqlalchemy import text
from ils.db.engine import create_engine
from ils.db.sqlite_inline import InlineCursor
from ils.db.transactions import Transactions, WriteTurn

async def main():
    engine = create_engine("sqlite:///" + sys.argv[1])
    async with engine.begin() as conn:
        for _ in range(3):
            await conn.execute(text("SELECT 1"))
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (x INTEGER)"))
        await conn.execute(text("INSERT INTO t VALUES (1)"))
    await Transactions(engine, WriteTurn()).run(
        lambda conn: conn.exec_driver_sql("INSERT INTO t VALUES (2)")
    )
    await engine.dispose()

asyncio.run(main())
for _ in range(5):  # garbage only the collector frees
    cycle = []
    cycle.append(cycle)
del cycle
gc.collect()
print(InlineCursor.execute.__qualname__)
prefix = os.environ.get("BENCH_SERVER_TIMING")
path = pathlib.Path(f"{prefix}.{os.getpid()}.jsonl")
deadline = time.monotonic() + 30
while prefix and time.monotonic() < deadline:
    if path.exists() and "GC generation 2" in path.read_text():
        break
    time.sleep(0.01)
"""


def _timed_run(
    tmp_path: Path, script: str = TIMED_PROCESS, **env: str
) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "PYTHONPATH": str(BENCH / "server_timing"),
        "BENCH_SERVER_TIMING_EVERY_S": "0.05",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "app.db")],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def test_server_timing_counts_statements_commits_and_collections(
    tmp_path: Path, bench_on_path: None
) -> None:
    prefix = str(tmp_path / "timing")
    _timed_run(tmp_path, BENCH_SERVER_TIMING=prefix)
    timing = importlib.import_module("users_support.timing")
    (process,) = timing.window_timings(prefix, 0.0, float("inf"))
    assert process.counts["execute SELECT 1"] == 3
    assert process.counts["COMMIT"] == 1  # the reads'
    assert process.counts["COMMIT after writes"] == 2  # and the write turn's
    assert process.counts["GC generation 2"] >= 1
    assert process.counts["GC generation 2 collected"] >= 5
    # The write turn, keyed by the function that asked for it.
    assert process.counts["write turn wait background <string>:main"] == 1
    assert process.counts["write turn held background <string>:main"] == 1
    lines = timing.report_lines([process], duration_s=1.0)
    assert any("execute SELECT 1" in line for line in lines)
    assert any("objects freed" in line for line in lines)


STALLING_PROCESS = """
import asyncio, os, pathlib, time

def hog():
    end = time.monotonic() + 0.08
    while time.monotonic() < end:
        pass

async def main():
    await asyncio.sleep(0)
    hog()
    await asyncio.sleep(0)

asyncio.run(main())
path = pathlib.Path(f"{os.environ['BENCH_SERVER_TIMING']}.{os.getpid()}.jsonl")
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    if path.exists() and "loop stall" in path.read_text():
        break
    time.sleep(0.01)
"""


def test_server_timing_names_a_long_callback_of_the_event_loop(
    tmp_path: Path, bench_on_path: None
) -> None:
    """With ``BENCH_SERVER_STALLS``, a task step that holds the loop 80 ms is counted
    under its task and the function its stack was sampled in."""
    prefix = str(tmp_path / "timing")
    _timed_run(tmp_path, STALLING_PROCESS, BENCH_SERVER_TIMING=prefix, BENCH_SERVER_STALLS="1")
    timing = importlib.import_module("users_support.timing")
    (process,) = timing.window_timings(prefix, 0.0, float("inf"))
    stalls = {key: n for key, n in process.counts.items() if key.startswith("loop stall")}
    assert stalls == {"loop stall main at <string>:hog": 1}  # the task, the place
    (slow,) = process.slow
    assert slow[1] >= 0.08
    lines = timing.report_lines([process], duration_s=1.0)
    assert "    the event loop's long callbacks: wall s   calls x    ms" in lines


def test_server_timing_is_inert_unless_asked(tmp_path: Path) -> None:
    run = _timed_run(tmp_path)
    assert run.stdout.strip() == "InlineCursor.execute"  # not wrapped
    assert [path.name for path in tmp_path.iterdir() if "json" in path.name] == []

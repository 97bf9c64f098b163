"""The benchmarks that drive a real server still start (they are not run by CI).

``bench/orders.py`` lost its inline comparison without anyone noticing: the app of
``bench/inline_orders_app.py`` passed the job system where the e-mail worker had come
to take a ``WorkerContext``, and failed in its lifespan. These tests import every
server benchmark and run that app's lifespan, so such a change breaks a test instead.
"""

from __future__ import annotations

import importlib
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
        for name in [*SCRIPTS, "users_support", "users_support.client", "users_support.procstat"]:
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

"""No route of the app runs a dependency or a handler in FastAPI's thread pool.

FastAPI calls a plain ``def`` dependency (or endpoint) through ``run_in_threadpool``:
a thread hop each, on every request. A py-spy profile of ``bench/orders.py`` found five
such dependencies (the state, system, settings, user and company lookups, which await
nothing) costing 5 % of the order API's time; as ``async def`` they run inline.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Iterator
from pathlib import Path

from fastapi.dependencies.models import Dependant

from ils.settings import Settings
from ils.web.app import create_app


def _routes(routes: Iterable[object]) -> Iterator[tuple[str, Dependant]]:
    """Every endpoint with its dependency tree, through included routers (FastAPI
    0.165 keeps an included router whole and lists its routes as candidates)."""
    for route in routes:
        candidates = getattr(route, "effective_candidates", None)
        if candidates is not None:
            yield from _routes(candidates())
        elif isinstance(getattr(route, "dependant", None), Dependant):
            yield str(getattr(route, "path", "?")), route.dependant  # type: ignore[attr-defined]


def _calls(dependant: Dependant) -> Iterator[object]:
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


def _runs_inline(call: object) -> bool:
    target = call if inspect.isfunction(call) or inspect.ismethod(call) else call.__call__  # type: ignore[operator]
    return inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target)


def test_every_dependency_and_endpoint_runs_on_the_event_loop(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path), start_workers=False)
    routes = list(_routes(app.routes))
    assert len(routes) > 80
    threaded = sorted(
        {
            f"{path}: {getattr(call, '__qualname__', call)}"
            for path, dependant in routes
            for call in _calls(dependant)
            if not _runs_inline(call)
        }
    )
    assert threaded == []

"""Routers hold no SQL: queries live in the domain's read models, writes in services.

A static check (an AST walk, so comments, strings and formatting cannot fool it)
over every module of ``src/ils/web/routers``: no import from ``sqlalchemy`` (``select``,
``text``, ``update``, ``func``... are all ways to write SQL), and no call that runs a
statement (``.execute``, ``.scalar``, ``.scalars`` on anything) or streams, loads, adds
or deletes rows through a session (``session.get``, ``.add``, ``.delete``,
``.stream``...).

And the import rules of docs/design.md, over every import (lazy ones and those under
``TYPE_CHECKING`` too): ``ils.jobs`` never imports ``ils.web`` or ``ils.workers``; a
worker package never imports another one (``ils.workers.cpu``, the shared CPU pool,
is not a worker).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Final

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROUTERS = ROOT / "src" / "ils" / "web" / "routers"
#: Methods that run SQL whatever object they are called on.
RUNS_SQL: Final = frozenset({"execute", "scalar", "scalars"})
#: Session methods whose names other objects share, flagged when called on something
#: named like a session (``dict.get``, ``set.add``, ``request.stream`` are fine).
SESSION_METHODS: Final = frozenset(
    {"get", "get_one", "add", "add_all", "delete", "merge", "refresh", "stream", "stream_scalars"}
)


def _is_session(node: ast.expr) -> bool:
    """``session``, ``reader``, ``self.session``, ``db_session``..."""
    name = node.id if isinstance(node, ast.Name) else getattr(node, "attr", "")
    return isinstance(name, str) and (name.endswith("session") or name == "reader")


def sql_uses(source: str, filename: str = "<router>") -> list[str]:
    """Where ``source`` imports SQLAlchemy or runs statements, as ``line: what`` in
    line order."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            if node.module == "sqlalchemy" or node.module.startswith("sqlalchemy."):
                names = ", ".join(alias.name for alias in node.names)
                found.append((node.lineno, f"from {node.module} import {names}"))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "sqlalchemy" or alias.name.startswith("sqlalchemy."):
                    found.append((node.lineno, f"import {alias.name}"))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            method = node.func.attr
            if method in RUNS_SQL or (method in SESSION_METHODS and _is_session(node.func.value)):
                found.append((node.lineno, f".{method}(...)"))
    return [f"{line}: {what}" for line, what in sorted(found)]


def router_modules() -> list[Path]:
    return sorted(ROUTERS.glob("*.py"))


def test_the_check_sees_inline_sql() -> None:
    """The check itself: each way of writing SQL in a router is caught."""
    source = """
import sqlalchemy.orm
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

async def handler(session, state, request):
    await session.execute(text("SELECT 1"))
    row = await session.scalar(select(X))
    rows = await state.db.scalars(select(X))
    user = await session.get(User, "id")
    session.add(user)
    request.cookies.get("name")
"""
    uses = sql_uses(source)
    assert [use.split(": ", 1)[1] for use in uses] == [
        "import sqlalchemy.orm",
        "from sqlalchemy import select, text",
        "from sqlalchemy.ext.asyncio import AsyncSession",
        ".execute(...)",
        ".scalar(...)",
        ".scalars(...)",
        ".get(...)",
        ".add(...)",
    ], uses


@pytest.mark.parametrize("path", router_modules(), ids=lambda path: path.name)
def test_router_holds_no_sql(path: Path) -> None:
    uses = sql_uses(path.read_text(encoding="utf-8"), str(path))
    assert not uses, (
        f"{path.relative_to(ROOT)} runs SQL itself; move it into a query function of "
        f"ils.domain (reads) or a service (writes): " + "; ".join(uses)
    )


def test_the_web_app_does_not_load_the_workers_libraries() -> None:
    """``ils serve --no-workers`` starts without the AI worker's statsmodels (seconds of
    import): the web reads channel names and constants, not the workers' modules."""
    code = (
        "import sys, ils.web.app; "
        "print(','.join(m for m in ('statsmodels', 'ils.workers.ai.demand') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout.strip()
    assert loaded == "", loaded


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


PACKAGE = ROOT / "src" / "ils"


def test_the_job_system_imports_neither_the_web_nor_the_workers() -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(
            m for m in _imported_modules(path) if m.startswith(("ils.web", "ils.workers"))
        )
        for path in sorted((PACKAGE / "jobs").rglob("*.py"))
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_no_worker_imports_another_worker() -> None:
    workers = sorted(
        p.name for p in (PACKAGE / "workers").iterdir() if p.is_dir() and p.name != "__pycache__"
    )
    offenders: dict[str, list[str]] = {}
    for worker in workers:
        for path in sorted((PACKAGE / "workers" / worker).rglob("*.py")):
            others = sorted(
                m
                for m in _imported_modules(path)
                if m.startswith("ils.workers.")
                and m.split(".")[2] in workers
                and m.split(".")[2] != worker
            )
            if others:
                offenders[str(path.relative_to(PACKAGE))] = others
    assert offenders == {}

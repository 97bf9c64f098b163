"""SQLite test databases copied from one migrated template, as PostgreSQL's are cloned.

Running every Alembic migration takes a third to two thirds of a second, and most
tests start from a fresh data directory: a ``JobSystem`` opened on it migrates the
embedded SQLite file at first start (``ensure_schema``). Copying a file migrated once
per test run gives the same database in about a millisecond. Only a database that is
still empty is replaced, and only on the way to the newest revision; a test that
migrates step by step, downgrades, or checks a database from another version calls
``ils.db.migrations`` itself and runs the real migrations.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy.engine import make_url

Upgrade = Callable[..., Awaitable[None]]


def build_template(directory: Path) -> Path:
    """A SQLite file under ``directory`` migrated to head, in a child process (as the
    PostgreSQL template is), with its log folded into the file so one copy is whole."""
    path = directory / "ils.db"
    migrate = "import asyncio, sys; from ils.db.migrations import upgrade_database; "
    migrate += "asyncio.run(upgrade_database(sys.argv[1]))"
    subprocess.run(
        [sys.executable, "-c", migrate, f"sqlite:///{path}"],
        check=True,
        capture_output=True,
        timeout=300,
    )
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def _empty_sqlite_file(url: str) -> Path | None:
    """The file of a SQLite ``url`` that holds no table yet (missing or just created
    by a look at its revision), else ``None``."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    if parsed.database == ":memory:" or parsed.database.startswith("file:"):
        return None
    path = Path(parsed.database)
    if not path.exists():
        return path
    db = sqlite3.connect(path)
    try:
        tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    finally:
        db.close()
    return path if tables == 0 else None


def from_template(template: Path, real: Upgrade) -> Upgrade:
    """``upgrade_database`` that copies ``template`` into an empty SQLite file bound
    for head, and runs ``real`` for anything else."""

    async def upgrade(url: str, revision: str = "head") -> None:
        target = _empty_sqlite_file(url) if revision == "head" else None
        if target is None:
            await real(url, revision)
            return
        _copy(template, target)

    return upgrade


def _copy(template: Path, target: Path) -> None:
    """Replace the empty database ``target`` (and its log) by a copy of ``template``,
    private to its owner as the engine makes every database file."""
    for leftover in (f"{target}-wal", f"{target}-shm"):
        Path(leftover).unlink(missing_ok=True)
    shutil.copyfile(template, target)
    target.chmod(0o600)

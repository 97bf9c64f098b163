"""Recording the SQL an engine runs, for tests that count statements (one insert for a
company's rows, polls that count instead of reading)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine


@contextmanager
def recorded_statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """Every statement ``engine`` sends while the block runs, in order, as sent (the
    list grows as they run, so a test may wait on it inside the block)."""
    statements: list[str] = []
    sync_engine = engine.sync_engine

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(sync_engine, "before_cursor_execute", record)


@contextmanager
def recorded_transactions(engine: AsyncEngine) -> Iterator[list[list[str]]]:
    """The statements of each transaction ``engine`` commits while the block runs, one
    list a transaction, in commit order (for tests that count what shares a commit)."""
    committed: list[list[str]] = []
    open_ones: dict[int, list[str]] = {}
    sync_engine = engine.sync_engine

    def record(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        open_ones.setdefault(id(conn), []).append(statement)

    def commit(conn: Any) -> None:
        committed.append(open_ones.pop(id(conn), []))

    def rollback(conn: Any) -> None:
        open_ones.pop(id(conn), None)

    listeners = (("before_cursor_execute", record), ("commit", commit), ("rollback", rollback))
    for name, listener in listeners:
        event.listen(sync_engine, name, listener)
    try:
        yield committed
    finally:
        for name, listener in listeners:
            event.remove(sync_engine, name, listener)

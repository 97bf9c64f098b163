"""SQLite's WAL copied back into the database from a thread, in the process's write turn.

In WAL mode every commit appends its pages to the ``-wal`` file, and the commit that
takes it past 1,000 pages copies them all back into the database and syncs the file
(SQLite's automatic checkpoint). Our inline driver commits on the event loop, so that
one commit held the loop for 20-70 ms about once a second under ``bench/users.py``:
every request in flight, reads included, waited for it (``--time-server`` with
``BENCH_SERVER_STALLS``: job and request steps stuck in a commit).

:class:`WalCheckpointer` does the copy every ``interval_s`` on a thread instead, on a
connection of its own, while it holds the process's :class:`~ils.db.transactions.WriteTurn`
as a background writer: no writer of this process appends while it copies, so the
copy is complete and the next writer starts the WAL over (a checkpoint thread that
did not hold the turn, tried on 2026-12-07, never completed one under a steady stream
of commits, and the WAL grew to hundreds of megabytes). The loop goes on meanwhile:
reads never wait for a checkpoint, writers wait for the turn as they would for any
writer. SQLite's own checkpoint stays on as the backstop: should the thread fall
behind, a commit past 1,000 pages still does the copy itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from pathlib import Path
from typing import Final

from ils.db.transactions import WriteTurn

#: How often the WAL is copied back by default (SQLite's own threshold of 1,000
#: pages was reached about once a second by the embedded server at 1,000 users).
DEFAULT_INTERVAL_S: Final = 0.5


class WalCheckpointer:
    """Copies the WAL of one SQLite database back every ``interval_s`` (see the module
    docstring); :meth:`run` until cancelled."""

    def __init__(self, database: Path, write_turn: WriteTurn, interval_s: float) -> None:
        self.database = database
        self.write_turn = write_turn
        self.interval_s = interval_s
        self.logger = logging.getLogger(__name__)

    async def run(self) -> None:
        """Checkpoint every ``interval_s`` until cancelled; a failed one is logged and
        the next tried (SQLite's own checkpoint covers the gap)."""
        connection = await asyncio.to_thread(self._open)
        try:
            while True:
                await asyncio.sleep(self.interval_s)
                try:
                    await self.checkpoint(connection)
                except sqlite3.Error as exc:
                    self.logger.warning("WAL checkpoint failed: %s", exc)
        finally:
            with contextlib.suppress(sqlite3.Error):
                connection.close()

    def _open(self) -> sqlite3.Connection:
        # Used only by the thread of each checkpoint, one at a time.
        connection = sqlite3.connect(self.database, check_same_thread=False)
        connection.isolation_level = None
        return connection

    async def checkpoint(self, connection: sqlite3.Connection) -> None:
        """One copy of the WAL, on a thread, in the write turn."""
        async with self.write_turn():
            await asyncio.to_thread(_passive_checkpoint, connection)


def _passive_checkpoint(connection: sqlite3.Connection) -> None:
    """``PRAGMA wal_checkpoint(PASSIVE)``: it never waits for a lock, so readers and
    other processes' writers go on; a WAL already copied costs next to nothing."""
    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

"""SQLite WAL checkpoints off the event loop (:class:`WalCheckpointer`).

SQLite checkpoints the write-ahead log by itself whenever a commit leaves it over
1,000 pages: that commit then copies the pages into the database file and syncs
both, inside the call that committed. Our SQLite driver runs on the event loop
(:mod:`ils.db.sqlite_inline`), so under load every request and job of the process
stopped for that copy every second or two: with it the paced p99 of
``POST /api/orders`` was 49 to 52 ms (``bench/orders.py``), 36 to 43 ms without.

A job system's engine opens its connections with automatic checkpoints off
(``create_engine(url, autocheckpoint=False)``) and :class:`WalCheckpointer` runs a
``PASSIVE`` checkpoint every ``interval_s`` on a connection of its own, in a thread
(``sqlite3`` releases the GIL while SQLite works; a passive checkpoint takes no lock
a reader or writer waits for).

That alone lets the log grow without end: it starts over at its beginning only when a
write begins just as a checkpoint has caught up with it. An automatic checkpoint runs
on the loop, so no writer of the process comes in between; from a thread, under steady
writes, one always does (300 MB of log in two minutes of ``bench/orders.py``). So once
the log passes ``RESTART_BYTES``, the checkpointer takes the process's write turn
and checkpoints again, on the loop: only the frames written since the passive pass
are left to copy, no writer of this process adds any meanwhile, and the next write
starts the log over. What keeps any checkpoint from catching up, a reader that stays
on an old snapshot or another process's writers, keeps the log growing here as it
does with automatic checkpoints. (A ``TRUNCATE`` checkpoint past 64 MiB was tried:
with 1,000 streams it never found the readers gone, and each try held every writer
back for its 50 ms wait.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Seconds between two checkpoints.
CHECKPOINT_INTERVAL_S = 0.5
#: A log this long is made to start over (under the process's write turn).
RESTART_BYTES = 4 * 1024 * 1024
#: Seconds between two warnings while checkpoints keep failing.
WARN_EVERY_S = 60.0

WriteTurnFactory = Callable[[], contextlib.AbstractAsyncContextManager[Any]]


class WalCheckpointer:
    """Checkpoints one SQLite database file from a task of the process's loop."""

    def __init__(
        self,
        path: Path,
        write_turn: WriteTurnFactory,
        interval_s: float = CHECKPOINT_INTERVAL_S,
    ) -> None:
        self.path = path
        self.write_turn = write_turn
        self.interval_s = interval_s
        #: Checkpoints done, and how many of them made the log start over.
        self.checkpoints = 0
        self.restarts = 0
        self._connection: sqlite3.Connection | None = None
        self._page_bytes = 4096
        self._logger = logging.getLogger(__name__)
        self._warned_at = 0.0

    async def run(self) -> None:
        """Checkpoint every ``interval_s`` until cancelled."""
        try:
            while True:
                await asyncio.sleep(self.interval_s)
                await self.checkpoint()
        finally:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    async def checkpoint(self) -> None:
        """One passive checkpoint, and the log made to start over if it is long."""
        try:
            frames = await asyncio.to_thread(self._pragma, "PASSIVE")
            # The frames in the log now, not the file's size: a log that starts over
            # keeps its file at the largest it ever was.
            if frames * self._page_bytes > RESTART_BYTES:
                # On the loop, in the turn: no writer of the process runs meanwhile,
                # and the turn is never held across a wait (a thread hop would keep
                # every writer queued for a pass of a busy loop). Only the frames
                # written since the pass above are left to copy: a millisecond or two.
                async with self.write_turn():
                    self._pragma("PASSIVE")
                self.restarts += 1
            self.checkpoints += 1
        except sqlite3.Error as exc:
            now = time.monotonic()
            if now - self._warned_at >= WARN_EVERY_S:
                self._warned_at = now
                self._logger.warning("SQLite WAL checkpoint of %s failed: %s", self.path, exc)

    def log_bytes(self) -> int:
        """The size of the log file now (0 when there is none)."""
        try:
            return self.path.with_name(f"{self.path.name}-wal").stat().st_size
        except OSError:
            return 0

    def _pragma(self, mode: str) -> int:
        """Checkpoint in ``mode``; the frames the log holds (before it starts over)."""
        if self._connection is None:
            self._connection = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False
            )
            self._page_bytes = int(self._connection.execute("PRAGMA page_size").fetchone()[0])
        _busy, frames, _copied = self._connection.execute(
            f"PRAGMA wal_checkpoint({mode})"
        ).fetchone()
        return max(int(frames), 0)

"""Web requests before background writers, across the processes of one SQLite file.

Within a process, :class:`~ils.db.transactions.WriteTurn` queues writers with web
requests first. Across processes SQLite has only its write lock, which goes to whoever
asks at the right moment. With ``ils worker`` beside ``ils serve`` on one database file,
the worker's jobs write back to back (the next begins as the last commits), and a
request of the web process, retrying between turns of a busy event loop, found the
lock taken for seconds: under ``bench/users.py --worker-processes 1`` on 2026-12-07,
``POST /api/orders`` waited 24 s at the median and 186 requests timed out after 30 s,
while the reads of the same run answered in 200 ms.

The gate is a lock file beside the database (``<database>-writers``, mode 0600). A
request that finds the write lock taken holds a shared ``flock`` on it until it has the
lock; a background writer (a job's claim, completion or handler, in any process) first
tries an exclusive ``flock``, released at once: when a request holds the file, the
writer waits, for at most ``yield_s``, before it asks SQLite. So a request waits for
the transaction in progress, not for the queue of jobs behind it. The kernel drops a
dead process's locks, so a crash cannot leave the gate shut, and ``yield_s`` bounds
what a steady stream of requests can hold the jobs back.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Final

from ils.files import FILE_MODE

#: Suffix of the gate's file beside the database (as SQLite's ``-wal`` and ``-shm``).
GATE_SUFFIX: Final = "-writers"
#: Longest a background writer waits for requests before it asks SQLite anyway.
DEFAULT_YIELD_S: Final = 1.0


class WriterGate:
    """The gate of one database file for one engine (see the module docstring).

    Every call is made on the event loop's thread (inside SQLAlchemy's greenlet) and
    never blocks: both locks are tried with ``LOCK_NB``. The file is opened for each
    use and closed after (a few microseconds against a write transaction's
    millisecond), so an engine dropped without being disposed leaves no file open.
    """

    def __init__(self, database: Path, *, yield_s: float = DEFAULT_YIELD_S) -> None:
        self.path = Path(f"{database}{GATE_SUFFIX}")
        self.yield_s = yield_s
        #: The open file this engine's waiting requests hold the gate with, and how
        #: many wait (a process's write turn lets one in at a time; the count keeps
        #: the gate right should two ever wait at once).
        self._held: int | None = None
        self._waiting = 0

    def _open(self) -> int:
        # Beside the database, whose directory exists; 0600 whatever the umask (which
        # only takes bits away), and an existing file keeps its mode.
        return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)

    def hold_for_request(self) -> bool:
        """Tell background writers that a request waits for the write lock.

        Returns:
            Whether the gate is now held; ``False`` when a background writer's check
            had it at that instant (the caller tries again on its next round).
        """
        if self._held is None:
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            self._held = fd
        self._waiting += 1
        return True

    def release_request(self) -> None:
        """A request that held the gate has the write lock (or gave up): once none
        waits, background writers may go."""
        self._waiting -= 1
        if self._waiting == 0 and self._held is not None:
            fd, self._held = self._held, None
            os.close(fd)  # closing the file drops its lock

    def requests_waiting(self) -> bool:
        """Whether a request of any process (this one's too) waits for the write lock."""
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

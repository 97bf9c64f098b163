"""The notification rows a web process's hub has handed to its streams.

The hub (:class:`ils.web.live.NotificationHub`) asks two things of them twice a
second: has it handed this row already (by id), and how many of the rows made in the
poll's window, of users with a stream open, has it handed (compared with the
database's count, so that equal counts skip reading the window). With 1,000 users
streaming the window holds about 17,000 rows (1,650 notifications a second, ten
seconds kept); answering the count by walking them all, and rebuilding the lot to drop
the old ones, was 3 % of the loaded web process (py-spy, ``bench/users.py --users
1000``). Here each user's times are kept sorted, so a count is two binary searches a
user, and old rows are dropped from the front.
"""

from __future__ import annotations

import bisect
import collections
from collections.abc import Container
from datetime import datetime


class SeenRows:
    """Rows handed, by id (with their user and ``created_at``) and by user and time."""

    def __init__(self) -> None:
        self._by_id: dict[str, str] = {}
        #: Each user's handed rows' ``created_at``, sorted.
        self._times: dict[str, list[datetime]] = {}
        #: (``created_at``, id) in the order rows were handed: nearly time order, so
        #: the old ones are at the front.
        self._handed: collections.deque[tuple[datetime, str]] = collections.deque()

    def __contains__(self, row_id: object) -> bool:
        return row_id in self._by_id

    def __len__(self) -> int:
        return len(self._by_id)

    def add(self, row_id: str, created_at: datetime, user_id: str) -> None:
        """Note a row handed (a row noted before is not counted twice)."""
        if row_id in self._by_id:
            return
        self._by_id[row_id] = user_id
        bisect.insort(self._times.setdefault(user_id, []), created_at)
        self._handed.append((created_at, row_id))

    def count(self, since: datetime, until: datetime, users: Container[str]) -> int:
        """How many rows of ``users`` made from ``since`` until before ``until``."""
        if until <= since:
            return 0
        return sum(
            bisect.bisect_left(times, until) - bisect.bisect_left(times, since)
            for user_id, times in self._times.items()
            if user_id in users
        )

    def forget_before(self, horizon: datetime) -> None:
        """Drop the rows made before ``horizon`` from the counts. Their ids go too,
        except a few handed after a newer row (a late commit), which go with it."""
        for user_id in list(self._times):
            times = self._times[user_id]
            del times[: bisect.bisect_left(times, horizon)]
            if not times:
                del self._times[user_id]
        handed = self._handed
        while handed and handed[0][0] < horizon:
            self._by_id.pop(handed.popleft()[1], None)

"""Live notification streams (Server-Sent Events), one hub per web process.

How a notification reaches a browser:

1. A worker (this process or any other) stores it and announces the rows it stored
   (notification and user ids, ``ils.jobs.channels``) on the job system's event bus
   (``ils.workers.notification``): Redis pub/sub in Redis mode, in-process in local
   mode.
2. :class:`NotificationHub` listens on the bus once for the process, reads the
   announced rows of its connected users in one query, and hands each stream its
   user's rows: an order told to a lab of 100 users is one read, not 100. It also
   looks in the database every ``stream_poll_s`` for notifications of connected users
   that no signal announced (written by a worker process it cannot hear, in local
   mode, or signalled while Redis was down) and hands those the same way. A row
   younger than one poll interval is left to its signal, which is on its way, so an
   unannounced row reaches its streams within two intervals (a second by default).
3. Each :class:`~ils.web.live_stream.NotificationStream` sends its rows as events whose id is the
   notification's id. A reconnecting browser sends the last one as
   ``Last-Event-ID`` and gets what came after it.

Order and the window: rows are read by ``created_at`` (then id). A worker's commit
can land a moment after a later-stamped one, so a stream re-reads the last
:data:`LATE_COMMIT_S` seconds each time and skips the ids it has already sent.
The database is the truth; signals only say "look now".

Caps (issue 23): the hub counts its streams per session and per user
(:class:`~ils.web.slots.OpenStreams`, numbers from ``LimitSettings``). A stream that
pushes either over its cap closes the oldest one, which ends with a ``closed`` event
and a long ``retry:`` so its browser does not come straight back to push another out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import Row, func, select

from ils.clock import Clock, utc_now
from ils.db.transactions import Transactions
from ils.domain.content import Notification
from ils.jobs.channels import NOTIFICATIONS as CHANNEL
from ils.jobs.channels import ROWS_PER_MESSAGE, read_notification_message
from ils.jobs.events import EventBus, Subscription
from ils.limit_settings import LimitSettings
from ils.settings import NotificationSettings
from ils.web.schemas.notifications import NotificationOut
from ils.web.security import SessionManager
from ils.web.seen_rows import SeenRows
from ils.web.slots import OpenStreams

#: How far behind the newest row a late commit may still land.
LATE_COMMIT_S: Final = 5.0
#: Rows sent per read; a stream far behind catches up over several reads.
BATCH: Final = 200
#: What the hub tells a stream pushed out by a newer one of its session or user.
CLOSE: Final = "close"
#: What the hub tells a stream whose session has ended (signed out, expired, user or
#: company deactivated): the stream ends.
SIGNED_OUT: Final = "signed-out"
#: What the hub tells a stream to read for itself (a signal named no rows, the hub's
#: read failed, or the stream had too many rows waiting).
READ: Final = "read"
#: What the hub tells a stream it has handed rows to (:meth:`Listener.take`).
HANDED: Final = "handed"
#: What a stream sends of a notification, and what it checks (user and company), read
#: as plain rows: the hub reads about 1,500 a second with 1,000 users streaming, and
#: loading each as an ORM object (identity map, instance state, attribute events) cost
#: several times the read for rows that are only ever turned into text.
STREAMED_COLUMNS: Final = (
    Notification.id,
    Notification.company_id,
    Notification.user_id,
    Notification.kind,
    Notification.priority,
    Notification.title,
    Notification.message,
    Notification.link,
    Notification.created_at,
    Notification.read_at,
)
#: A notification read for a stream (:data:`STREAMED_COLUMNS`, by attribute name).
StreamedRow = Row[Any]
#: The last event of a stream closed for a newer one: a browser reconnects after a
#: minute (``retry:``) instead of two seconds, so tabs do not push each other out.
CLOSED_EVENT: Final = 'retry: 60000\nevent: closed\ndata: {"reason": "too many streams"}\n\n'


def notification_out(row: Notification | StreamedRow) -> NotificationOut:
    """The API and stream representation of ``row``."""
    return NotificationOut.read_from(row, read=row.read_at is not None)


def sse_event(row: StreamedRow) -> str:
    """One ``notification`` event in the text/event-stream format."""
    data = notification_out(row).model_dump_json()
    return f"id: {row.id}\nevent: notification\ndata: {data}\n\n"


def sse_events(rows: list[StreamedRow]) -> str:
    """The events of ``rows`` as one chunk: one write to the browser for all the rows
    a wake-up brings, not one per row (each is an ASGI send on a loop that, with
    1,000 streams, serves 1,500 events a second; bench/users.py)."""
    return "".join(sse_event(row) for row in rows)


class Listener:
    """One stream's link to the hub: its wake-up channel, and the rows handed to it."""

    def __init__(self, user_id: str) -> None:
        self.wake = Subscription(user_id)
        self._handed: list[StreamedRow] = []

    @property
    def user_id(self) -> str:
        return self.wake.channel

    def hand(self, rows: list[StreamedRow]) -> None:
        """Give the stream ``rows`` of its user; one that has not taken :data:`BATCH`
        rows yet (a slow browser) is told to read for itself instead, so what waits
        here stays small."""
        if len(self._handed) + len(rows) > BATCH:
            self._handed.clear()
            self.wake.deliver(READ)
            return
        self._handed.extend(rows)
        self.wake.deliver(HANDED)

    def take(self) -> list[StreamedRow]:
        """The rows handed since the last call."""
        rows, self._handed = self._handed, []
        return rows


class NotificationHub:
    """Wakes this process's streams when their users have something new."""

    def __init__(
        self,
        bus: EventBus,
        db: Transactions,
        settings: NotificationSettings,
        clock: Clock,
        sessions: SessionManager | None = None,
    ) -> None:
        self._bus = bus
        self.db = db
        #: Checks the streams' sessions every heartbeat interval (``None``: never).
        self._sessions = sessions
        self._settings = settings
        self._clock = clock
        self._streams: dict[str, set[Listener]] = {}
        self._open: OpenStreams[Listener] = OpenStreams()
        self._task: asyncio.Task[None] | None = None
        #: Newest ``created_at`` the poll has seen, and the rows handed near it.
        self._watermark: datetime | None = None
        self._seen = SeenRows()
        self._logger = logging.getLogger(__name__)

    @property
    def connected(self) -> int:
        """How many streams are open in this process."""
        return sum(len(streams) for streams in self._streams.values())

    def count(self, *, session_key: str | None = None, user_id: str | None = None) -> int:
        """Open streams of a session or of a user (see :class:`OpenStreams`)."""
        return self._open.count(session_key=session_key, user_id=user_id)

    @contextlib.asynccontextmanager
    async def attach(
        self, user_id: str, session_key: str, caps: LimitSettings
    ) -> AsyncIterator[Listener]:
        """A link to the hub for one stream of ``user_id`` while the block runs; the
        oldest streams it pushes over the caps are told to close."""
        listener = Listener(user_id)
        self._streams.setdefault(user_id, set()).add(listener)
        for evicted in self._open.add(listener, session_key, user_id, caps):
            self._end(evicted, CLOSE)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="ils-notification-hub")
        try:
            yield listener
        finally:
            self._open.discard(listener)
            self._forget(listener)

    def _end(self, listener: Listener, signal: str) -> None:
        """Tell ``listener``'s stream to end (``signal`` says why) and stop counting and
        waking it: no wake-up after this one, which a full backlog could drop."""
        self._open.discard(listener)
        self._forget(listener)
        listener.wake.deliver(signal)

    def _forget(self, listener: Listener) -> None:
        """Stop waking ``listener``."""
        streams = self._streams.get(listener.user_id)
        if streams is not None:
            streams.discard(listener)
            if not streams:
                del self._streams[listener.user_id]

    def _wake(self, user_ids: set[str]) -> None:
        """Tell the streams of ``user_ids`` to read for themselves."""
        for user_id in user_ids:
            for listener in self._streams.get(user_id, ()):
                listener.wake.deliver(READ)

    async def _signalled(self, messages: list[str]) -> None:
        """Hand the rows ``messages`` announce to the streams of their users; users
        named without rows read for themselves."""
        announced: dict[str, str] = {}
        users: set[str] = set()
        for message in messages:
            rows_named, named = read_notification_message(message)
            announced |= rows_named
            users |= named
        self._wake(users)
        await self._hand(announced)

    async def _hand(self, announced: dict[str, str]) -> None:
        """Read the rows of ``announced`` (notification id → user id) that this
        process's streams wait for and have not had, in one query, and hand each
        stream its user's rows."""
        wanted = [
            row_id
            for row_id, user_id in announced.items()
            if user_id in self._streams and row_id not in self._seen
        ]
        if not wanted:
            return
        try:
            found = await self._read_rows(wanted)
        except Exception:
            # The database is busy or down: each stream tries for itself.
            self._logger.exception("reading announced notifications failed")
            self._wake({announced[row_id] for row_id in wanted})
            return
        by_user: dict[str, list[StreamedRow]] = {}
        for row in found:
            if row.user_id is not None:
                self._note_seen(row.id, row.created_at, row.user_id)
                by_user.setdefault(row.user_id, []).append(row)
        for user_id, user_rows in by_user.items():
            for listener in self._streams.get(user_id, ()):
                listener.hand(user_rows)
        if len(found) < len(wanted):
            # Not visible to this read (or gone): the streams look for themselves.
            found_ids = {row.id for row in found}
            self._wake({announced[row_id] for row_id in wanted if row_id not in found_ids})

    async def _read_rows(self, row_ids: list[str]) -> list[StreamedRow]:
        """The notifications ``row_ids``, oldest first."""
        rows: list[StreamedRow] = []
        async with self.db.read() as session:
            for start in range(0, len(row_ids), ROWS_PER_MESSAGE):
                chunk = row_ids[start : start + ROWS_PER_MESSAGE]
                rows += await session.execute(
                    select(*STREAMED_COLUMNS).where(Notification.id.in_(chunk))
                )
        rows.sort(key=lambda row: (row.created_at, row.id))
        return rows

    def _note_seen(self, row_id: str, created_at: datetime, user_id: str) -> None:
        self._seen.add(row_id, created_at, user_id)
        self._advance_watermark(created_at)

    def _advance_watermark(self, created_at: datetime) -> None:
        """Move the newest ``created_at`` the hub has met (the poll's window) forward."""
        if self._watermark is None or created_at > self._watermark:
            self._watermark = created_at

    async def _run(self) -> None:
        poll_s = self._settings.stream_poll_s
        async with self._bus.subscribe(CHANNEL) as signals:
            next_poll = time.monotonic()
            next_check = next_poll + self._settings.stream_heartbeat_s
            while True:
                message = await signals.get(max(0.0, next_poll - time.monotonic()))
                if message is not None:
                    try:
                        await self._signalled([message, *signals.drain()])
                    except Exception:
                        self._logger.exception("handing notifications to streams failed")
                if time.monotonic() >= next_poll:
                    next_poll = time.monotonic() + poll_s
                    if self._streams:
                        try:
                            if pending := signals.drain():
                                # Announced before the poll's read: handed, not found
                                # unseen by the poll.
                                await self._signalled(pending)
                            await self._hand(await self._poll())
                        except Exception:
                            # The database is down or busy: streams wait for the next
                            # signal or poll; the hub itself must not die.
                            self._logger.exception("notification poll failed")
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + self._settings.stream_heartbeat_s
                    await self._end_signed_out()

    async def _end_signed_out(self) -> None:
        """End the streams whose session has ended, all of them checked in one read.

        Every heartbeat interval, busy streams too: a stream that checked its own
        session when it sent a keep-alive never did while notifications kept coming
        (a lab user's, all day), and 1,000 idle streams made 30 such reads a second.
        When the read fails the streams stay open until the next check: a database
        hiccup must not close every browser's stream at once.
        """
        keys = self._open.session_keys()
        if self._sessions is None or not keys:
            return
        try:
            async with self.db.read() as session:
                alive = await self._sessions.alive(session, keys)
        except Exception:
            self._logger.exception("checking the live streams' sessions failed")
            return
        for key in keys - alive:
            for listener in self._open.of_session(key):
                self._end(listener, SIGNED_OUT)

    async def _poll(self) -> dict[str, str]:
        """Rows of connected users the hub has not had (notification id → user id):
        announced on no bus this process hears, or while Redis was down.

        The rows of the window are counted first, and read only when the hub has
        handed fewer: with 1,000 streams the window holds thousands of rows (1,500
        notifications a second, bench/users.py), and reading them twice a second was
        the web process's largest single cost (py-spy). A row is only ever deleted
        long after it left the window (the scheduled clean-up), so equal counts mean
        the hub has had every row of the window.

        The window ends one poll interval ago: a row younger than that is most likely
        committed and about to be announced. Counting it too made the counts differ at
        almost every poll under that load, and each read the whole window: one step of
        50-140 ms on the event loop every half second (timed per callback, 1,000
        users). A row nobody announces is counted once it is older.
        """
        users = list(self._streams)
        until = utc_now(self._clock) - timedelta(seconds=self._settings.stream_poll_s)
        async with self.db.read() as session:
            watermark = self._watermark
            if watermark is None:
                watermark = await session.scalar(select(func.max(Notification.created_at)))
                if watermark is None:
                    return {}
                self._advance_watermark(watermark)
            since = min(watermark, until) - timedelta(seconds=LATE_COMMIT_S)
            # Rows seen before the window are never read again.
            horizon = since - timedelta(seconds=LATE_COMMIT_S)
            self._seen.forget_before(horizon)
            mine = (
                Notification.user_id.in_(users),
                Notification.created_at >= since,
                Notification.created_at < until,
            )
            stored = await session.scalar(select(func.count()).where(*mine))
            if stored == self._seen.count(since, until, self._streams):
                return {}
            query = select(Notification.id, Notification.user_id, Notification.created_at)
            rows = (await session.execute(query.where(*mine))).all()
        unseen = {}
        for notification_id, user_id, created_at in rows:
            if notification_id not in self._seen and user_id is not None:
                unseen[notification_id] = user_id
            self._advance_watermark(created_at)
        return unseen

    async def close(self) -> None:
        """Stop listening (streams still open end with the server)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

"""Live notification streams (Server-Sent Events), one hub per web process.

How a notification reaches a browser:

1. A worker (this process or any other) stores it and publishes the user's id on
   the job system's event bus (``ils.workers.notification``): Redis pub/sub in Redis
   mode, in-process in local mode.
2. :class:`NotificationHub` listens on the bus once for the process and wakes the
   streams of that user. It also looks in the database every ``stream_poll_s`` for
   notifications of connected users that no signal announced: written by a worker
   process it cannot hear (local mode) or signalled while Redis was down.
3. Each :class:`NotificationStream` then reads the user's new rows and sends them as
   events whose id is the notification's id. A reconnecting browser sends the last
   one as ``Last-Event-ID`` and gets what came after it.

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
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import ColumnElement, and_, func, or_, select

from ils.db.engine import AsyncSession
from ils.db.transactions import Transactions
from ils.domain.content import Notification
from ils.jobs.channels import NOTIFICATIONS as CHANNEL
from ils.jobs.events import EventBus, Subscription
from ils.limit_settings import LimitSettings
from ils.settings import NotificationSettings
from ils.web.schemas.notifications import NotificationOut
from ils.web.slots import OpenStreams

#: How far behind the newest row a late commit may still land.
LATE_COMMIT_S: Final = 5.0
#: Rows sent per read; a stream far behind catches up over several reads.
BATCH: Final = 200
#: What the hub tells a stream pushed out by a newer one of its session or user.
CLOSE: Final = "close"
#: The last event of a stream closed for a newer one: a browser reconnects after a
#: minute (``retry:``) instead of two seconds, so tabs do not push each other out.
CLOSED_EVENT: Final = 'retry: 60000\nevent: closed\ndata: {"reason": "too many streams"}\n\n'


def notification_out(row: Notification) -> NotificationOut:
    """The API and stream representation of ``row``."""
    return NotificationOut.read_from(row, read=row.read_at is not None)


def sse_event(row: Notification) -> str:
    """One ``notification`` event in the text/event-stream format."""
    data = notification_out(row).model_dump_json()
    return f"id: {row.id}\nevent: notification\ndata: {data}\n\n"


class NotificationHub:
    """Wakes this process's streams when their users have something new."""

    def __init__(self, bus: EventBus, db: Transactions, settings: NotificationSettings) -> None:
        self._bus = bus
        self.db = db
        self._settings = settings
        self._streams: dict[str, set[Subscription]] = {}
        self._open: OpenStreams[Subscription] = OpenStreams()
        self._task: asyncio.Task[None] | None = None
        #: Newest ``created_at`` the poll has seen, and the ids seen near it.
        self._watermark: datetime | None = None
        self._seen: dict[str, datetime] = {}
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
    ) -> AsyncIterator[Subscription]:
        """A wake-up channel for one stream of ``user_id`` while the block runs; the
        oldest streams it pushes over the caps are told to close."""
        wake = Subscription(user_id)
        self._streams.setdefault(user_id, set()).add(wake)
        for evicted in self._open.add(wake, session_key, user_id, caps):
            # No wake-up after this one: a full backlog could drop it.
            self._forget(evicted)
            evicted.deliver(CLOSE)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="ils-notification-hub")
        try:
            yield wake
        finally:
            self._open.discard(wake)
            self._forget(wake)

    def _forget(self, wake: Subscription) -> None:
        """Stop waking ``wake`` (its channel is its user's id)."""
        streams = self._streams.get(wake.channel)
        if streams is not None:
            streams.discard(wake)
            if not streams:
                del self._streams[wake.channel]

    def _wake(self, user_ids: set[str]) -> None:
        for user_id in user_ids:
            for wake in self._streams.get(user_id, ()):
                wake.deliver("new")

    async def _run(self) -> None:
        poll_s = self._settings.stream_poll_s
        async with self._bus.subscribe(CHANNEL) as signals:
            next_poll = time.monotonic()
            while True:
                message = await signals.get(max(0.0, next_poll - time.monotonic()))
                if message is not None:
                    self._wake({message, *signals.drain()})
                if time.monotonic() >= next_poll:
                    next_poll = time.monotonic() + poll_s
                    if self._streams:
                        try:
                            self._wake(await self._poll())
                        except Exception:
                            # The database is down or busy: streams wait for the next
                            # signal or poll; the hub itself must not die.
                            self._logger.exception("notification poll failed")

    async def _poll(self) -> set[str]:
        """Users with rows the poll has not seen before (waking a stream that has
        sent them already costs one read and sends nothing)."""
        users = list(self._streams)
        async with self.db.read() as session:
            query = select(Notification.id, Notification.user_id, Notification.created_at)
            query = query.where(Notification.user_id.in_(users))
            if self._watermark is not None:
                since = self._watermark - timedelta(seconds=LATE_COMMIT_S)
                query = query.where(Notification.created_at >= since)
            else:
                newest = await session.scalar(select(func.max(Notification.created_at)))
                self._watermark = newest
                if newest is None:
                    return set()
                query = query.where(
                    Notification.created_at >= newest - timedelta(seconds=LATE_COMMIT_S)
                )
            rows = (await session.execute(query)).all()
        woken = set()
        for notification_id, user_id, created_at in rows:
            if notification_id not in self._seen:
                self._seen[notification_id] = created_at
                if user_id is not None:
                    woken.add(user_id)
            if self._watermark is None or created_at > self._watermark:
                self._watermark = created_at
        if self._watermark is not None:
            horizon = self._watermark - timedelta(seconds=2 * LATE_COMMIT_S)
            self._seen = {key: at for key, at in self._seen.items() if at >= horizon}
        return woken

    async def close(self) -> None:
        """Stop listening (streams still open end with the server)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None


@dataclass(eq=False)
class NotificationStream:
    """The events of one connected browser: replay, then live notifications."""

    hub: NotificationHub
    db: Transactions
    settings: NotificationSettings
    user_id: str
    company_id: str
    _: KW_ONLY
    session_key: str
    caps: LimitSettings
    #: The ``created_at`` of the newest row sent, and ids sent within the window.
    _cursor: datetime | None = field(default=None, init=False)
    _sent: dict[str, datetime] = field(default_factory=dict, init=False)

    def _mine(self) -> tuple[ColumnElement[bool], ...]:
        return (
            Notification.user_id == self.user_id,
            Notification.company_id == self.company_id,
        )

    async def start_at(self, session: AsyncSession, last_event_id: str | None) -> None:
        """Place the cursor: after ``last_event_id`` if it is one of the user's
        notifications, else after the newest one (only new ones are sent).

        Reads in the request's own session: a second connection taken while the
        request holds one could exhaust the pool when many browsers reconnect at
        once (each holding one, all waiting for another; bench/notifications.py
        found it with 100 streams opened together).
        """
        last = None
        if last_event_id:
            last = await session.scalar(
                select(Notification).where(Notification.id == last_event_id, *self._mine())
            )
        if last is not None:
            self._cursor = last.created_at
            # Rows of the window at or before the last one seen, in (created_at, id)
            # order: the browser had them; only what came after is replayed.
            rows = await session.execute(
                select(Notification.id, Notification.created_at).where(
                    *self._mine(),
                    Notification.created_at >= last.created_at - timedelta(seconds=LATE_COMMIT_S),
                    or_(
                        Notification.created_at < last.created_at,
                        and_(
                            Notification.created_at == last.created_at,
                            Notification.id <= last.id,
                        ),
                    ),
                )
            )
            self._sent = dict(rows.tuples().all())
            return
        newest = await session.scalar(
            select(func.max(Notification.created_at)).where(*self._mine())
        )
        self._cursor = newest
        if newest is not None:
            since = newest - timedelta(seconds=LATE_COMMIT_S)
            rows = await session.execute(
                select(Notification.id, Notification.created_at).where(
                    *self._mine(), Notification.created_at >= since
                )
            )
            self._sent = dict(rows.tuples().all())

    async def _unsent(self) -> list[Notification]:
        async with self.db.read() as session:
            query = select(Notification).where(*self._mine())
            if self._cursor is not None:
                since = self._cursor - timedelta(seconds=LATE_COMMIT_S)
                query = query.where(Notification.created_at >= since)
            rows = await session.scalars(
                query.order_by(Notification.created_at, Notification.id).limit(
                    BATCH + len(self._sent)
                )
            )
            fresh = [row for row in rows if row.id not in self._sent]
        for row in fresh:
            self._sent[row.id] = row.created_at
            if self._cursor is None or row.created_at > self._cursor:
                self._cursor = row.created_at
        if self._cursor is not None:
            horizon = self._cursor - timedelta(seconds=2 * LATE_COMMIT_S)
            self._sent = {key: at for key, at in self._sent.items() if at >= horizon}
        return fresh

    async def events(self) -> AsyncIterator[str]:
        """The text/event-stream body: what was missed, then each new notification,
        with a comment line when idle so proxies keep the connection. Ends with
        :data:`CLOSED_EVENT` when a newer stream pushes it over a cap."""
        attached = self.hub.attach(self.user_id, self.session_key, self.caps)
        async with attached as wake:
            # Counted before the client hears it is connected.
            yield f"retry: 2000\n: connected {json.dumps(self.user_id)}\n\n"
            for row in await self._unsent():
                yield sse_event(row)
            while True:
                signal = await wake.get(self.settings.stream_heartbeat_s)
                if signal is None:
                    yield ": keep-alive\n\n"
                    continue
                if CLOSE in (signal, *wake.drain()):
                    yield CLOSED_EVENT
                    return
                for row in await self._unsent():
                    yield sse_event(row)

"""One browser's live notification stream: what it missed, then what the hub hands it.

The hub (:mod:`ils.web.live`) wakes a stream or hands it its user's rows; the stream
keeps its own cursor (the newest ``created_at`` sent, and the ids sent within the
late-commit window), so what it sends is each of its user's rows once, in order,
whichever way they reached it. A stream the hub pushes out over a cap ends with
:data:`~ils.web.live.CLOSED_EVENT`; one whose session has ended just ends.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, select

from ils.db.engine import AsyncSession
from ils.db.transactions import Transactions
from ils.domain.content import Notification
from ils.limit_settings import LimitSettings
from ils.settings import NotificationSettings
from ils.web.live import (
    BATCH,
    CLOSE,
    CLOSED_EVENT,
    LATE_COMMIT_S,
    READ,
    SIGNED_OUT,
    STREAMED_COLUMNS,
    NotificationHub,
    StreamedRow,
    sse_events,
)


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

    async def _unsent(self) -> list[StreamedRow]:
        """Read the user's rows after the cursor (and the late-commit window)."""
        async with self.db.read() as session:
            query = select(*STREAMED_COLUMNS).where(*self._mine())
            if self._cursor is not None:
                since = self._cursor - timedelta(seconds=LATE_COMMIT_S)
                query = query.where(Notification.created_at >= since)
            rows = await session.execute(
                query.order_by(Notification.created_at, Notification.id).limit(
                    BATCH + len(self._sent)
                )
            )
            return self._accept(list(rows))

    def _accept(self, rows: list[StreamedRow]) -> list[StreamedRow]:
        """Of ``rows`` (oldest first), those to send: the stream's own, in the window
        its read would cover, not sent yet; the cursor moves past them."""
        since = None if self._cursor is None else self._cursor - timedelta(seconds=LATE_COMMIT_S)
        fresh = [
            row
            for row in rows
            if row.id not in self._sent
            and row.company_id == self.company_id
            and (since is None or row.created_at >= since)
        ]
        for row in fresh:
            self._sent[row.id] = row.created_at
            if self._cursor is None or row.created_at > self._cursor:
                self._cursor = row.created_at
        if self._cursor is not None and len(self._sent) > BATCH:
            # Now and then, not per row: a busy lab user's stream gets rows every
            # few milliseconds. Ids older than the window are never read again.
            horizon = self._cursor - timedelta(seconds=2 * LATE_COMMIT_S)
            self._sent = {key: at for key, at in self._sent.items() if at >= horizon}
        return fresh

    async def events(self) -> AsyncIterator[str]:
        """The text/event-stream body: what was missed, then each new notification,
        with a comment line when idle so proxies keep the connection. Ends with
        :data:`CLOSED_EVENT` when a newer stream pushes it over a cap."""
        attached = self.hub.attach(self.user_id, self.session_key, self.caps)
        async with attached as listener:
            # Counted, and what was missed read, before the client hears it is connected.
            missed = await self._unsent()
            yield f"retry: 2000\n: connected {json.dumps(self.user_id)}\n\n"
            if missed:
                yield sse_events(missed)
            while True:
                signal = await listener.wake.get(self.settings.stream_heartbeat_s)
                if signal is None:
                    yield ": keep-alive\n\n"
                    continue
                signals = {signal, *listener.wake.drain()}
                if SIGNED_OUT in signals:
                    return
                if CLOSE in signals:
                    yield CLOSED_EVENT
                    return
                handed = listener.take()
                rows = await self._unsent() if READ in signals else self._accept(handed)
                if rows:
                    yield sse_events(rows)

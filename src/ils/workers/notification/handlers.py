"""The ``notification`` queue's handlers: store once, signal live streams, escalate.

* A notification job stores one row for its user, with the job's id in the unique
  ``job_id`` column: a retry (after a crash between commit and completion) finds
  the row and stores nothing twice, and of two copies of the job running at once
  (the same job id in two stores) the one whose insert loses to the unique index
  returns the winner's row instead of failing.
* A ``company-order-notification`` (one job per order event, not per recipient)
  stores one row per active user of the company in one transaction, with
  :func:`recipient_key` (job id and user id) in ``job_id``: a retry stores only the
  rows an earlier attempt did not, so never one twice.
* Its log line goes in the same transaction (``ctx.log(..., session=session)``): in
  local mode that is one SQLite write transaction a job fewer.
* After the commit it publishes on ``notifications`` the rows it stored (notification
  and user ids, a company's rows in one message) on the job system's event bus; web
  processes holding a recipient's live stream read those rows once for all of them.
* An ``urgent`` notification also queues, in the same transaction, a delayed
  ``urgent-notification-email`` job; when it runs and the notification is still
  unread, it marks the row and queues the e-mail, again in one transaction, so the
  e-mail goes once however often the job is retried. The mark is a compare-and-set
  (``emailed_at`` still empty), so two copies of the check running at once on
  PostgreSQL, which both read the row unmarked, cannot both queue an e-mail.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Final

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ils.clock import utc_now
from ils.domain.content import Notification, NotificationPriority
from ils.domain.types import JOB_ID_LENGTH
from ils.ids import ordered_id
from ils.jobs import channels
from ils.jobs.model import JobOptions
from ils.jobs.payloads.notification import CompanyOrderNotification, UrgentNotificationEmail
from ils.jobs.producer import COMPANY_INFO_KEY
from ils.jobs.registry import JobContext
from ils.jobs.worker_context import WorkerContext
from ils.workers.notification.content import (
    Draft,
    Drafter,
    NoticeT,
    ai_insight_draft,
    company_order_drafts,
    marketplace_draft,
    order_draft,
    system_draft,
)

#: The event-bus channel of new notifications (``ils.jobs.channels``).
CHANNEL: Final = channels.NOTIFICATIONS
URGENT_EMAIL_JOB: Final = "urgent-notification-email"
#: E-mail subjects are one line of at most this many characters (jobs.md helpers).
SUBJECT_LIMIT: Final = 200

#: Keys per look-up of a company notification's stored rows: well inside SQLite's and
#: asyncpg's limits of about 32,000 bound parameters.
BATCH_ROWS: Final = 1_000


def urgent_email_job_id(notification_id: str) -> str:
    """One escalation job per notification: adding it twice adds nothing."""
    return f"urgent-email-{notification_id}"


def recipient_key(job_id: str, user_id: str) -> str:
    """The ``job_id`` column of one recipient's row of a company notification job:
    one per (job, user), so a retry finds what its earlier attempt stored. A job id
    too long to fit beside the user id is replaced by its SHA-256."""
    key = f"{job_id}/{user_id}"
    if len(key) <= JOB_ID_LENGTH:
        return key
    return f"sha256-{hashlib.sha256(job_id.encode()).hexdigest()}/{user_id}"


def _stores(
    drafter: Drafter[NoticeT],
) -> Callable[[NotificationWorker, NoticeT, JobContext], Awaitable[dict[str, Any]]]:
    """The handler of a single-user notification job type: :meth:`NotificationWorker.store`
    with that type's drafter, which is all the four such types differ in."""

    async def handler(
        worker: NotificationWorker, payload: NoticeT, ctx: JobContext
    ) -> dict[str, Any]:
        return await worker.store(payload, ctx, drafter)

    return handler


class NotificationWorker:
    """Handlers of the ``notification`` queue for one process."""

    def __init__(self, context: WorkerContext) -> None:
        self.context = context
        self.db = context.db
        self.settings = context.settings.notifications

    # -- the four single-user handlers: each stores what its own drafter makes -------

    system_notification = _stores(system_draft)
    order_notification = _stores(order_draft)
    ai_insight_notification = _stores(ai_insight_draft)
    marketplace_notification = _stores(marketplace_draft)

    async def company_order_notification(
        self, payload: CompanyOrderNotification, ctx: JobContext
    ) -> dict[str, Any]:
        """Handler of ``company-order-notification``: a row for each active user of
        the company, stored in one transaction, then each recipient's streams are
        signalled (again on a retry: the first attempt may have died before). Who is
        told is read first, outside the write: a user who joins or leaves in between
        is decided by that read, as by any read a moment earlier."""
        # Drafted in a read of its own: the write transaction, which holds SQLite's one
        # write lock (and the process's write turn that requests queue for), only
        # stores the rows.
        async with self.db.read() as session:
            drafts = await company_order_drafts(session, payload)
        keyed = {recipient_key(ctx.job_id, draft.user_id): draft for draft in drafts}
        async with self.db.write() as session:
            try:
                async with session.begin_nested():
                    created, announced = await self._insert_missing(session, keyed)
            except IntegrityError:
                # Another copy of this job stored rows first (PostgreSQL: our insert
                # waited on its commit): store only those it did not.
                async with session.begin_nested():
                    created, announced = await self._insert_missing(session, keyed)
            await ctx.log(
                f"stored {created} order notifications for company {payload.company_id} "
                f"({len(drafts) - created} already stored)",
                session=session,
            )
        for message in channels.notification_messages(announced):
            await self.context.events.publish(CHANNEL, message)
        return {
            "companyId": payload.company_id,
            "orderId": payload.order_id,
            "recipients": len(drafts),
            "created": created,
        }

    async def _insert_missing(
        self, session: AsyncSession, keyed: dict[str, Draft]
    ) -> tuple[int, list[tuple[str, str]]]:
        """Insert the rows of ``keyed`` (by recipient key) not stored yet, in one
        executemany: how many were inserted, and every
        row of ``keyed`` (notification id, user id) to announce, stored now or before."""
        keys = list(keyed)
        stored: dict[str, tuple[str, str]] = {}
        for start in range(0, len(keys), BATCH_ROWS):
            batch = keys[start : start + BATCH_ROWS]
            found = await session.execute(
                select(Notification.job_id, Notification.id, Notification.user_id).where(
                    Notification.job_id.in_(batch)
                )
            )
            stored.update((key, (row_id, user_id or "")) for key, row_id, user_id in found)
        now = utc_now(self.context.clock)
        rows = [_row(key, draft, now) for key, draft in keyed.items() if key not in stored]
        if rows:
            # One executemany of a statement compiled once (a multi-row ``VALUES`` is
            # built and compiled anew for every job: 4 % of a loaded server's loop).
            table = Notification.metadata.tables[Notification.__tablename__]
            await session.execute(insert(table), rows)
        announced = [*stored.values(), *((row["id"], row["user_id"]) for row in rows)]
        return len(rows), announced

    async def store(
        self, payload: NoticeT, ctx: JobContext, drafter: Drafter[NoticeT]
    ) -> dict[str, Any]:
        """Store the job's notification (once) and signal the user's live streams.

        ``drafter`` says what to store for ``payload``; it runs only when the job has
        stored nothing yet.
        """
        async with self.db.write() as session:
            existing = await session.scalar(
                select(Notification).where(Notification.job_id == ctx.job_id)
            )
            if existing is not None:
                notification, created = existing, False
            else:
                try:
                    async with session.begin_nested():
                        content = await drafter(session, payload)
                        notification = await self._insert(session, content, ctx)
                    created = True
                except IntegrityError:
                    # Another copy of this job inserted first (PostgreSQL: our insert
                    # waited on its commit): that row is the job's notification.
                    existing = await session.scalar(
                        select(Notification).where(Notification.job_id == ctx.job_id)
                    )
                    if existing is None:
                        raise
                    notification, created = existing, False
            await ctx.log(
                f"{'stored' if created else 'already stored'} {notification.kind} "
                f"notification {notification.id} ({notification.priority})",
                session=session,
            )
        # Signalled again on a retry too: the first attempt may have died before it.
        if notification.user_id:
            (message,) = channels.notification_messages([(notification.id, notification.user_id)])
            await self.context.events.publish(CHANNEL, message)
        return {"notificationId": notification.id, "created": created}

    async def _insert(self, session: AsyncSession, content: Draft, ctx: JobContext) -> Notification:
        """Add the job's row (and an urgent one's delayed e-mail check) to ``session``."""
        notification = Notification(**_row(ctx.job_id, content, utc_now(self.context.clock)))
        session.add(notification)
        await session.flush()
        if content.priority is NotificationPriority.URGENT:
            await self.context.sink.enqueue(
                "notification",
                URGENT_EMAIL_JOB,
                UrgentNotificationEmail(notification_id=notification.id),
                JobOptions(
                    priority=1,
                    attempts=3,
                    delay_ms=round(self.settings.urgent_email_after_s * 1000),
                    job_id=urgent_email_job_id(notification.id),
                    company_id=content.company_id,
                ),
                session=session,
            )
        return notification

    async def escalate(self, payload: UrgentNotificationEmail, ctx: JobContext) -> dict[str, Any]:
        """Handler of ``urgent-notification-email``: e-mail an urgent notification its
        user has not read (once)."""
        async with self.db.write() as session:
            notification = await session.scalar(
                select(Notification).where(Notification.id == payload.notification_id)
            )
            if notification is None or notification.user_id is None:
                outcome = "deleted"
            elif notification.read_at is not None:
                outcome = "read"
            elif notification.emailed_at is not None or not await self._email(
                session, notification
            ):
                outcome = "already e-mailed"
            else:
                outcome = "e-mailed"
        await ctx.log(f"urgent notification {payload.notification_id}: {outcome}")
        return {"notificationId": payload.notification_id, "outcome": outcome}

    async def _email(self, session: AsyncSession, notification: Notification) -> bool:
        """Mark the notification e-mailed and queue the e-mail; ``False`` when another
        copy of the check marked it first (nothing queued). The mark comes first and
        is a compare-and-set: on PostgreSQL a second copy's update waits for the
        first's commit, then matches no row."""
        user_id = notification.user_id
        if user_id is None:
            return False
        marked = await session.execute(
            update(Notification)
            .where(Notification.id == notification.id, Notification.emailed_at.is_(None))
            .values(emailed_at=utc_now(self.context.clock))
            .execution_options(synchronize_session=False)
        )
        if not getattr(marked, "rowcount", 0):
            return False
        link = notification.link or "/notifications"
        if link.startswith("/"):
            link = self.context.settings.public_url.rstrip("/") + link
        content = f"{notification.message}\n\nOpen: {link}"
        session.info[COMPANY_INFO_KEY] = notification.company_id
        subject = f"Urgent: {notification.title}".replace("\n", " ")[:SUBJECT_LIMIT]
        await self.context.helpers.queue_general_notification_email(
            user_id, subject, content, session=session
        )
        return True


def _row(key: str, draft: Draft, now: datetime) -> dict[str, Any]:
    """The column values of one notification row, stored under ``key`` (its ``job_id``):
    a notification job's single row and each row of a company notification's multi-row
    INSERT are built here, so both kinds of job store the same columns. The row's id is
    time-ordered (:mod:`ils.ids`): a company's rows go on the id index's last pages."""
    return {
        "id": ordered_id(),
        "company_id": draft.company_id,
        "user_id": draft.user_id,
        "kind": draft.kind,
        "priority": draft.priority,
        "title": draft.title,
        "message": draft.message,
        "link": draft.link,
        "job_id": key,
        "created_at": now,
    }

"""The message log: each message's state in the app database, written step by step.

Each step is its own short transaction, committed before the next SMTP step, so what
the row says is true whatever happens to the process afterwards:

* ``open``: before anything is sent, the row exists (``pending``); a row from an
  earlier attempt is returned as it is, which is how a retry learns the message was
  ``sent`` already.
* ``mark_sending``: the envelope was accepted and the content is about to go.
* ``mark_sent``: the server answered 250 to the content.
* ``mark_failed`` (5xx, unusable address) and ``mark_deferred`` (4xx, connection
  lost: back to ``pending``, or left ``sending`` when the outcome is unknown).

On SQLite every write takes the process's write turn (``JobSystem.write_turn``) like
the job store and web requests do, so it queues in order instead of spinning in
SQLite's busy handler; reads run in deferred transactions that take no lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ils.clock import Clock
from ils.database import Transactions
from ils.domain.mail import REPLY_LENGTH, SUBJECT_LENGTH, MailMessage, MailState

#: The e-mail worker's transactions on the app database (see ``Transactions``).
MailDatabase = Transactions


@dataclass(frozen=True, slots=True)
class NewMessage:
    """What the log records about a message before it is sent."""

    message_id: str
    job_id: str
    queue: str
    job_name: str
    slot: str
    company_id: str
    recipient_company_id: str | None
    recipient: str
    subject: str
    transport: str


@dataclass(frozen=True, slots=True)
class LoggedMessage:
    """A message's row as ``open`` found or made it."""

    message_id: str
    state: MailState
    attempts: int
    created_at: datetime


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class MessageLog:
    """The ``mail_messages`` rows of the e-mail worker (see the module docstring)."""

    def __init__(self, db: MailDatabase, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.now_ms() / 1000, UTC)

    async def open(self, new: NewMessage) -> LoggedMessage:
        """The message's row, created ``pending`` on the first attempt.

        A row not sent yet takes the current recipient and subject (an address edited
        since the last attempt is where the message goes now). Two workers opening the
        same message at once (a job whose lock expired) end up with the one row.
        """
        values = {
            "recipient": new.recipient,
            "subject": _clip(new.subject, SUBJECT_LENGTH),
            "transport": new.transport,
        }
        async with self.db.write() as session:
            row = await self._row(session, new.message_id)
            if row is None:
                row = MailMessage(
                    message_id=new.message_id,
                    job_id=new.job_id,
                    queue=new.queue,
                    job_name=new.job_name,
                    slot=new.slot,
                    company_id=new.company_id,
                    recipient_company_id=new.recipient_company_id,
                    state=MailState.PENDING,
                    attempts=0,
                    created_at=self._now(),
                    updated_at=self._now(),
                    **values,
                )
                try:
                    async with session.begin_nested():
                        session.add(row)
                except IntegrityError:
                    row = await self._row(session, new.message_id)
                    assert row is not None  # the other writer's row
            elif row.state != MailState.SENT:
                for key, value in values.items():
                    setattr(row, key, value)
                row.updated_at = self._now()
            return LoggedMessage(row.message_id, row.state, row.attempts, row.created_at)

    @staticmethod
    async def _row(session: AsyncSession, message_id: str) -> MailMessage | None:
        query = select(MailMessage).where(MailMessage.message_id == message_id)
        row: MailMessage | None = await session.scalar(query.with_for_update())
        return row

    async def _set(self, message_id: str, **values: Any) -> None:
        async with self.db.write() as session:
            await session.execute(
                update(MailMessage)
                .where(MailMessage.message_id == message_id)
                .values(updated_at=self._now(), **values)
            )

    async def mark_sending(self, message_id: str) -> None:
        """The content is about to go: from now on a crash leaves the outcome unknown."""
        await self._set(
            message_id,
            state=MailState.SENDING,
            attempts=MailMessage.attempts + 1,
            sending_at=self._now(),
            error=None,
        )

    async def mark_sent(self, message_id: str, reply: str) -> None:
        """The server accepted the content (or the file is written)."""
        await self._set(
            message_id,
            state=MailState.SENT,
            sent_at=self._now(),
            reply=_clip(reply, REPLY_LENGTH),
            error=None,
        )

    async def mark_failed(self, message_id: str, error: str) -> None:
        """Refused for good; a manual retry of the job may try again."""
        await self._set(message_id, state=MailState.FAILED, error=_clip(error, REPLY_LENGTH))

    async def mark_deferred(self, message_id: str, error: str, *, state: MailState | None) -> None:
        """Not delivered this time, to be retried: record why, and set ``state`` when the
        caller knows it (``pending``: refused for now; ``sending``: the content went out
        and no answer came, outcome unknown; ``None``: keep what the row says)."""
        values: dict[str, Any] = {"error": _clip(error, REPLY_LENGTH)}
        if state is not None:
            values["state"] = state
        await self._set(message_id, **values)

"""The message log: each message's state in the app database, written step by step.

Each step is its own short transaction, committed before the next SMTP step, so what
the row says is true whatever happens to the process afterwards:

* ``open``: before anything is sent, the row exists (``pending``); a row from an
  earlier attempt is returned as it is, which is how a retry learns the message was
  ``sent`` already.
* ``claim``: the envelope was accepted and the content is about to go: the row turns
  ``sending`` under a send lease, by compare-and-set (below).
* ``mark_sent``: the server answered 250 to the content.
* ``mark_failed`` (5xx, unusable address) and ``mark_deferred`` (4xx, connection
  lost: back to ``pending``, or left ``sending`` when the outcome is unknown).

The send lease: one job can run twice at once (the same job id in two stores, or a
lock that expired while its worker still ran), and both copies open the same row.
Only the copy whose ``claim`` updates the row may send; the other waits for it. The
lease needs no column of its own: a row is *leased* while it is ``sending`` with no
``error`` and its ``sending_at`` is younger than the lease length. ``claim`` sets
exactly that (and counts ``attempts``), in one ``UPDATE ... WHERE`` that matches only
a row nobody holds, so of two copies exactly one gets the row. Every way an attempt
ends clears the lease: ``sent``, ``failed``, ``pending``, or ``sending`` with the
error that made the outcome unknown. A holder that died mid-send leaves the lease
until it expires; then a later attempt takes over and sends again under the same
Message-ID (the policy in ``handlers.py``). ``attempts`` after the claim identifies
the holder, so a holder whose lease expired and was taken over cannot end the new
holder's lease with its own late outcome.

On SQLite every write takes the process's write turn (``JobSystem.write_turn``) like
the job store and web requests do, so it queues in order instead of spinning in
SQLite's busy handler; reads run in deferred transactions that take no lock.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ils.clock import Clock
from ils.db.transactions import Transactions
from ils.domain.mail import REPLY_LENGTH, SUBJECT_LENGTH, MailMessage, MailState

#: The e-mail worker's transactions on the app database (see ``Transactions``).
MailDatabase = Transactions

#: The send lease when the caller names none (the worker passes one derived from
#: the SMTP timeout, see ``handlers.send_lease_s``).
DEFAULT_LEASE_S: Final = 90.0


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
    """A message's row as ``open`` (or ``look``) found or made it.

    ``leased``: another attempt holds the send lease (it is sending the message now,
    or died doing so less than a lease ago): this one must not send.
    """

    message_id: str
    state: MailState
    attempts: int
    created_at: datetime
    leased: bool = False


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class MessageLog:
    """The ``mail_messages`` rows of the e-mail worker (see the module docstring)."""

    def __init__(self, db: MailDatabase, clock: Clock, *, lease_s: float = DEFAULT_LEASE_S) -> None:
        self.db = db
        self.clock = clock
        self.lease = timedelta(seconds=lease_s)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.now_ms() / 1000, UTC)

    def _held(self, row: MailMessage) -> bool:
        """Whether ``row`` is under a live send lease (see the module docstring)."""
        return (
            row.state is MailState.SENDING
            and row.error is None
            and row.sending_at is not None
            and row.sending_at > self._now() - self.lease
        )

    def _free(self) -> ColumnElement[bool]:
        """SQL: the row is not sent and nobody holds its lease, so an attempt may send."""
        ended = MailMessage.error.is_not(None) | MailMessage.sending_at.is_(None)
        expired = MailMessage.sending_at <= self._now() - self.lease
        return MailMessage.state.in_([MailState.PENDING, MailState.FAILED]) | (
            (MailMessage.state == MailState.SENDING) & (ended | expired)
        )

    def _logged(self, row: MailMessage) -> LoggedMessage:
        return LoggedMessage(
            row.message_id, row.state, row.attempts, row.created_at, self._held(row)
        )

    async def open(self, new: NewMessage) -> LoggedMessage:
        """The message's row, created ``pending`` on the first attempt.

        A row not sent yet takes the current recipient and subject (an address edited
        since the last attempt is where the message goes now), unless another attempt
        is sending it right now. Two workers opening the same message at once (a job
        whose lock expired) end up with the one row.
        """
        values = {
            "recipient": new.recipient,
            "subject": _clip(new.subject, SUBJECT_LENGTH),
            "transport": new.transport,
        }
        async with self.db.write() as session:
            row = await self._row(session, new.message_id)
            if row is None:
                # Every field of ``new`` is a column of the same name.
                row = MailMessage(
                    **(asdict(new) | values),
                    state=MailState.PENDING,
                    attempts=0,
                    created_at=self._now(),
                    updated_at=self._now(),
                )
                try:
                    async with session.begin_nested():
                        session.add(row)
                except IntegrityError:
                    row = await self._row(session, new.message_id)
                    assert row is not None  # the other writer's row
            elif row.state != MailState.SENT and not self._held(row):
                for key, value in values.items():
                    setattr(row, key, value)
                row.updated_at = self._now()
            return self._logged(row)

    async def look(self, message_id: str) -> LoggedMessage | None:
        """The row as it is now, without taking a lock (for waiting on a holder)."""
        async with self.db.read() as session:
            row = await session.scalar(
                select(MailMessage).where(MailMessage.message_id == message_id)
            )
            return None if row is None else self._logged(row)

    @staticmethod
    async def _row(session: AsyncSession, message_id: str) -> MailMessage | None:
        query = select(MailMessage).where(MailMessage.message_id == message_id)
        row: MailMessage | None = await session.scalar(query.with_for_update())
        return row

    async def _set(self, message_id: str, *when: ColumnElement[bool], **values: Any) -> bool:
        """Update the row if it matches ``when``; whether it did."""
        async with self.db.write() as session:
            result = await session.execute(
                update(MailMessage)
                .where(MailMessage.message_id == message_id, *when)
                .values(updated_at=self._now(), **values)
                .execution_options(synchronize_session=False)
            )
            return bool(getattr(result, "rowcount", 0))

    def _ours(self, claim: int | None) -> ColumnElement[bool]:
        """SQL: the row may take the outcome of an attempt holding ``claim`` (still its
        lease, not taken over since), or of one that never claimed (nobody holds it)."""
        if claim is None:
            return self._free()
        return (MailMessage.state == MailState.SENDING) & (MailMessage.attempts == claim)

    async def claim(self, message_id: str, *, seen: int) -> int | None:
        """Take the send lease: the content is about to go, and from now on a crash
        leaves the outcome unknown. Compare-and-set: of attempts claiming at once,
        exactly one gets the row; the others get ``None`` and must not send (the row
        is sent, or another attempt holds it). The claim is the row's new ``attempts``,
        which the outcome of this attempt is recorded under.

        ``seen``: the row's ``attempts`` when this attempt opened (or last looked at)
        it. Another attempt that claimed it since, and already recorded its outcome
        (refused for good, say), leaves a row that looks free; deciding on that
        outcome is the caller's, so the claim fails (``tests/workers/test_mail_claim.py``).
        """
        async with self.db.write() as session:
            claimed: int | None = await session.scalar(
                update(MailMessage)
                .where(
                    MailMessage.message_id == message_id,
                    MailMessage.attempts == seen,
                    self._free(),
                )
                .values(
                    state=MailState.SENDING,
                    attempts=MailMessage.attempts + 1,
                    sending_at=self._now(),
                    updated_at=self._now(),
                    error=None,
                )
                .returning(MailMessage.attempts)
                .execution_options(synchronize_session=False)
            )
            return claimed

    async def mark_sent(self, message_id: str, reply: str) -> None:
        """The server accepted the content (or the file is written)."""
        await self._set(
            message_id,
            state=MailState.SENT,
            sent_at=self._now(),
            reply=_clip(reply, REPLY_LENGTH),
            error=None,
        )

    async def mark_failed(self, message_id: str, error: str, *, claim: int | None) -> None:
        """Refused for good; a manual retry of the job may try again.

        ``claim``: this attempt's claim, or ``None`` when it was refused before
        claiming; either way a row another attempt holds (or sent) is left alone.
        """
        await self._set(
            message_id,
            self._ours(claim),
            state=MailState.FAILED,
            error=_clip(error, REPLY_LENGTH),
        )

    async def mark_deferred(
        self, message_id: str, error: str, *, state: MailState | None, claim: int | None
    ) -> None:
        """Not delivered this time, to be retried: record why, and set ``state`` when the
        caller knows it (``pending``: refused for now; ``sending``: the content went out
        and no answer came, outcome unknown; ``None``: keep what the row says). The
        error ends the lease; ``claim`` as for ``mark_failed``."""
        values: dict[str, Any] = {"error": _clip(error, REPLY_LENGTH)}
        if state is not None:
            values["state"] = state
        await self._set(message_id, self._ours(claim), **values)

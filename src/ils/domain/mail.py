"""The sent-mail log: one row per e-mail message the e-mail worker sends.

The row is also what makes delivery exactly-once as the recipient sees it. Its
``message_id`` (the ``Message-ID`` header) is derived from the job, so a retried job
finds the row of its earlier attempt and does not send a message the server already
accepted. The states, in order::

    pending  → the message is known, nothing handed to the server yet
    sending  → DATA has started: the server may have the content (unknown outcome)
    sent     → the server answered 250 to the end of DATA
    failed   → the server refused for good (5xx); a manual retry may try again

Bodies are never stored (they hold prescription summaries); recipient, subject and
the server's reply are, for the admins' log.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ils.db.engine import Base
from ils.domain.types import (
    EMAIL_LENGTH,
    JOB_ID_LENGTH,
    IdMixin,
    StrEnumType,
    TimestampMixin,
    UtcDateTime,
    foreign_id,
)

#: Longest Message-ID kept (RFC 5322 lines are 998 characters; ours are ~60).
MESSAGE_ID_LENGTH = 255
#: Longest subject kept; longer ones are cut for the log (the e-mail keeps it whole).
SUBJECT_LENGTH = 300
#: Longest server reply or error kept.
REPLY_LENGTH = 500


class MailState(StrEnum):
    """Where a message stands (see the module docstring for the order)."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class MailMessage(IdMixin, TimestampMixin, Base):
    """One e-mail message of a job, to one recipient.

    ``company_id`` is the company the message speaks for (the lab confirming an order,
    the lab ordering from a supplier, the company asking to connect);
    ``recipient_company_id`` the company of the recipient. The admins of either see the
    row in ``GET /api/mail``. ``slot`` tells the messages of one job apart (a purchase
    order mailed to each manager of a supplier without a company address).
    """

    __tablename__ = "mail_messages"
    __table_args__ = (
        Index("ix_mail_messages_company_created", "company_id", "created_at"),
        Index("ix_mail_messages_recipient_company_created", "recipient_company_id", "created_at"),
        Index("ix_mail_messages_created_at", "created_at"),
    )

    message_id: Mapped[str] = mapped_column(String(MESSAGE_ID_LENGTH), unique=True)
    job_id: Mapped[str] = mapped_column(String(JOB_ID_LENGTH), index=True)
    queue: Mapped[str] = mapped_column(String(32))
    job_name: Mapped[str] = mapped_column(String(64))
    slot: Mapped[str] = mapped_column(String(100))
    company_id: Mapped[str] = foreign_id("companies.id")
    recipient_company_id: Mapped[str | None] = foreign_id("companies.id")
    recipient: Mapped[str] = mapped_column(String(EMAIL_LENGTH))
    subject: Mapped[str] = mapped_column(String(SUBJECT_LENGTH))
    state: Mapped[MailState] = mapped_column(StrEnumType(MailState, 16), default=MailState.PENDING)
    #: ``smtp`` or ``file``: where the message went.
    transport: Mapped[str] = mapped_column(String(16))
    #: How many times DATA was started for this message (a resend shows as 2).
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: The server's last reply (``250 2.0.0 queued as ...``), or the file written.
    reply: Mapped[str | None] = mapped_column(String(REPLY_LENGTH))
    #: Why the last try did not end in ``sent``.
    error: Mapped[str | None] = mapped_column(String(REPLY_LENGTH))
    sending_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

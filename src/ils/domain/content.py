"""What workers produce and users upload: notifications, documents, AI output, chat, files.

Rows written by a job carry that job's id. ``notifications.job_id`` is unique, so a
retried notification job inserts nothing the second time (the worker relies on the
constraint rather than a read-then-write race). None of these tables hold patient
data: they point at orders, examinations and invoices by id.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ils.db.engine import Base
from ils.domain.types import (
    JOB_ID_LENGTH,
    CreatedAtMixin,
    IdMixin,
    StrEnumType,
    TimestampMixin,
    UtcDateTime,
    foreign_id,
)

#: Length of a sha256 hex digest.
SHA256_LENGTH = 64
#: Longest storage path kept (relative to the configured storage root).
PATH_LENGTH = 500


class NotificationPriority(StrEnum):
    """How prominently the UI shows a notification; ``urgent`` ones are also e-mailed
    when left unread (jobs.md maps them to job priorities 1-4)."""

    URGENT = "urgent"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class AIResultKind(StrEnum):
    """What an AI job produced."""

    BRIEFING = "briefing"
    FORECAST = "forecast"
    ANOMALY = "anomaly"
    INSIGHT = "insight"


class TracingStatus(StrEnum):
    """What checking an uploaded lens-tracing file found."""

    OK = "ok"
    WARNINGS = "warnings"
    ERRORS = "errors"
    #: The file could not be read at all (its one finding says why).
    UNREADABLE = "unreadable"


class MessageRole(StrEnum):
    """Who wrote a chat message."""

    USER = "user"
    ASSISTANT = "assistant"


class Notification(IdMixin, CreatedAtMixin, Base):
    """An in-app notification for one user (or the whole company when ``user_id`` is empty).

    ``kind`` is a free string (``order``, ``marketplace``, ...) so new notification
    types need no migration.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_user_read", "user_id", "read_at"),
        Index("ix_notifications_company_created", "company_id", "created_at"),
        Index("ix_notifications_user_created", "user_id", "created_at"),
    )

    company_id: Mapped[str] = foreign_id("companies.id")
    user_id: Mapped[str | None] = foreign_id("users.id", ondelete="CASCADE")
    kind: Mapped[str] = mapped_column(String(32))
    priority: Mapped[NotificationPriority] = mapped_column(
        StrEnumType(NotificationPriority, 8), default=NotificationPriority.MEDIUM
    )
    title: Mapped[str] = mapped_column(String(200))
    message: Mapped[str] = mapped_column(Text)
    #: A path inside the app (``/orders/<id>``) or an http(s) URL (checked by the
    #: job payload's ``Link`` type).
    link: Mapped[str | None] = mapped_column(String(2000))
    read_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    #: When this urgent notification, still unread, was also sent as an e-mail.
    emailed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    job_id: Mapped[str | None] = mapped_column(String(JOB_ID_LENGTH), unique=True)


class Document(IdMixin, CreatedAtMixin, Base):
    """A generated PDF, versioned per subject (order, invoice or examination).

    The file lives in storage at ``path`` (a storage key, relative to the storage
    root); ``sha256`` and ``size_bytes`` let a download check it has not changed.
    ``job_id`` is unique, so a retried job finds the row its earlier attempt wrote
    instead of adding a version; the unique ``(subject, kind, version)`` indexes make
    two regenerations racing for the same next version fail rather than both win.
    """

    __tablename__ = "documents"
    __table_args__ = (
        Index("ix_documents_company_kind", "company_id", "kind"),
        Index("uq_documents_order_kind_version", "order_id", "kind", "version", unique=True),
        Index("uq_documents_invoice_kind_version", "invoice_id", "kind", "version", unique=True),
        Index(
            "uq_documents_examination_kind_version",
            "examination_id",
            "kind",
            "version",
            unique=True,
        ),
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint("size_bytes >= 0", name="size_non_negative"),
    )

    company_id: Mapped[str] = foreign_id("companies.id")
    #: ``order_sheet``, ``lab_work_ticket``, ``invoice``, ``receipt``, ...
    kind: Mapped[str] = mapped_column(String(32))
    order_id: Mapped[str | None] = foreign_id("orders.id", index=True)
    invoice_id: Mapped[str | None] = foreign_id("invoices.id", index=True)
    examination_id: Mapped[str | None] = foreign_id("examinations.id", index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    path: Mapped[str] = mapped_column(String(PATH_LENGTH))
    sha256: Mapped[str] = mapped_column(String(SHA256_LENGTH))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    job_id: Mapped[str | None] = mapped_column(String(JOB_ID_LENGTH), index=True, unique=True)
    #: The download name, e.g. ``invoice-INV-2026-00012-v2.pdf``.
    filename: Mapped[str | None] = mapped_column(String(200))


class AIResult(IdMixin, CreatedAtMixin, Base):
    """One AI output for a company: a daily briefing, a forecast, an anomaly, an insight.

    ``day`` is the local date it is for (briefings, anomalies); ``period`` labels a
    longer span (``2026-11``, ``2026-W47``) for forecasts and insights.
    """

    __tablename__ = "ai_results"
    __table_args__ = (Index("ix_ai_results_company_kind_day", "company_id", "kind", "day"),)

    company_id: Mapped[str] = foreign_id("companies.id")
    kind: Mapped[AIResultKind] = mapped_column(StrEnumType(AIResultKind, 16))
    period: Mapped[str | None] = mapped_column(String(32))
    day: Mapped[date | None] = mapped_column(Date)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    job_id: Mapped[str | None] = mapped_column(String(JOB_ID_LENGTH), index=True)


class Conversation(IdMixin, TimestampMixin, Base):
    """An AI chat of one user; ``updated_at`` moves with each message for the list."""

    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_company_user", "company_id", "user_id"),)

    company_id: Mapped[str] = foreign_id("companies.id")
    user_id: Mapped[str] = foreign_id("users.id", ondelete="CASCADE", index=True)
    title: Mapped[str | None] = mapped_column(String(200))

    messages: Mapped[list[Message]] = relationship(
        back_populates="conversation",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Message.created_at",
    )


class Message(IdMixin, CreatedAtMixin, Base):
    """One chat message; deleted with its conversation. Answers carry their job's id."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_conversation_created", "conversation_id", "created_at"),)

    conversation_id: Mapped[str] = foreign_id("conversations.id", ondelete="CASCADE")
    role: Mapped[MessageRole] = mapped_column(StrEnumType(MessageRole, 16))
    content: Mapped[str] = mapped_column(Text)
    #: The chat-response job that wrote this answer (unique: a retried job finds its
    #: answer instead of adding a second one).
    job_id: Mapped[str | None] = mapped_column(String(JOB_ID_LENGTH), unique=True)

    conversation: Mapped[Conversation] = relationship(back_populates="messages")


class UploadedFile(IdMixin, CreatedAtMixin, Base):
    """A file a user uploaded (OMA tracing files of an order, mostly)."""

    __tablename__ = "uploaded_files"
    __table_args__ = (
        Index("ix_uploaded_files_company_created", "company_id", "created_at"),
        CheckConstraint("size_bytes >= 0", name="size_non_negative"),
    )

    company_id: Mapped[str] = foreign_id("companies.id")
    order_id: Mapped[str | None] = foreign_id("orders.id", index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(SHA256_LENGTH))
    path: Mapped[str] = mapped_column(String(PATH_LENGTH))
    uploaded_by: Mapped[str | None] = foreign_id("users.id", index=True)


class OrderTracing(IdMixin, CreatedAtMixin, Base):
    """The result of processing one uploaded tracing file (OMA/VCA) for an order.

    ``document`` is the parsed file as ``[[label, [fields...]], ...]`` (every record,
    vendor ones included, so it can be written back); ``measurements`` per eye
    (``R``/``L``: boxing A and B, ED, circumference, in mm); ``findings`` the checks'
    results (``severity``, ``code``, ``message``); ``outline`` the right lens's shape
    as also copied to ``orders.frame_outline`` for the lab work ticket. ``job_id`` is
    unique: a retried job finds its row instead of adding another. The newest row of
    an order is its current tracing.
    """

    __tablename__ = "order_tracings"
    __table_args__ = (Index("ix_order_tracings_order_created", "order_id", "created_at"),)

    order_id: Mapped[str] = foreign_id("orders.id", ondelete="CASCADE")
    file_id: Mapped[str] = foreign_id("uploaded_files.id", ondelete="CASCADE", index=True)
    status: Mapped[TracingStatus] = mapped_column(StrEnumType(TracingStatus, 16))
    document: Mapped[list[Any] | None] = mapped_column(JSON)
    measurements: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    findings: Mapped[list[Any]] = mapped_column(JSON, default=list)
    outline: Mapped[list[list[float]] | None] = mapped_column(JSON)
    job_id: Mapped[str | None] = mapped_column(String(JOB_ID_LENGTH), unique=True)

"""A practice's patients and their eye examinations.

Patient data lives only here and in ``orders`` (the prescription a lab needs): job
payloads, notifications and logs carry ids, never names or clinical values.

Clinical values follow the usual optical units: sphere, cylinder and add in dioptres
(``Fixed2``), axis in whole degrees, keratometry in dioptres, IOP in mmHg.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ils.db.engine import Base
from ils.domain.companies import Company, User
from ils.domain.types import (
    EMAIL_LENGTH,
    CreatedAtMixin,
    Fixed2,
    IdMixin,
    StrEnumType,
    TimestampMixin,
    UtcDateTime,
    foreign_id,
)


class Patient(IdMixin, TimestampMixin, Base):
    """A patient of one practice (``company_id``); other companies never see them.

    ``reference`` is the practice's own patient number, unique within the practice
    when given.
    """

    __tablename__ = "patients"
    __table_args__ = (
        Index("ix_patients_company_name", "company_id", "last_name", "first_name"),
        UniqueConstraint("company_id", "reference", name="uq_patients_company_reference"),
    )

    company_id: Mapped[str] = foreign_id("companies.id")
    reference: Mapped[str | None] = mapped_column(String(64))
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    date_of_birth: Mapped[date | None] = mapped_column(Date)
    email: Mapped[str | None] = mapped_column(String(EMAIL_LENGTH))
    phone: Mapped[str | None] = mapped_column(String(32))

    company: Mapped[Company] = relationship()
    examinations: Mapped[list[Examination]] = relationship(
        back_populates="patient", order_by="Examination.examined_at"
    )


class SightTestOutcome(StrEnum):
    """What a UK sight test ends with (the statement the patient is given)."""

    NO_CHANGE = "no_change"
    NEW_RX = "new_rx"
    REFERRAL = "referral"


class Examination(IdMixin, CreatedAtMixin, Base):
    """One eye examination of a patient by a user of the same practice.

    Per-eye values use ``right_`` / ``left_`` prefixes like orders, so a refraction can
    be copied into an order field by field; VA and IOP keep the ``_right`` / ``_left``
    suffixes of the spec.
    """

    __tablename__ = "examinations"
    __table_args__ = (
        Index("ix_examinations_company_examined", "company_id", "examined_at"),
        CheckConstraint("right_axis BETWEEN 1 AND 180", name="right_axis_range"),
        CheckConstraint("left_axis BETWEEN 1 AND 180", name="left_axis_range"),
        CheckConstraint("right_k_axis BETWEEN 0 AND 180", name="right_k_axis_range"),
        CheckConstraint("left_k_axis BETWEEN 0 AND 180", name="left_k_axis_range"),
        CheckConstraint("iop_right >= 0", name="iop_right_non_negative"),
        CheckConstraint("iop_left >= 0", name="iop_left_non_negative"),
    )

    company_id: Mapped[str] = foreign_id("companies.id")
    patient_id: Mapped[str] = foreign_id("patients.id", index=True)
    examiner_id: Mapped[str | None] = foreign_id("users.id", index=True)
    examined_at: Mapped[datetime] = mapped_column(UtcDateTime())
    #: Snellen notation such as ``6/6`` or ``20/20``.
    va_right: Mapped[str | None] = mapped_column(String(16))
    va_left: Mapped[str | None] = mapped_column(String(16))
    right_sphere: Mapped[Decimal | None] = mapped_column(Fixed2())
    right_cylinder: Mapped[Decimal | None] = mapped_column(Fixed2())
    right_axis: Mapped[int | None] = mapped_column(Integer)
    right_add: Mapped[Decimal | None] = mapped_column(Fixed2())
    left_sphere: Mapped[Decimal | None] = mapped_column(Fixed2())
    left_cylinder: Mapped[Decimal | None] = mapped_column(Fixed2())
    left_axis: Mapped[int | None] = mapped_column(Integer)
    left_add: Mapped[Decimal | None] = mapped_column(Fixed2())
    right_k1: Mapped[Decimal | None] = mapped_column(Fixed2())
    right_k2: Mapped[Decimal | None] = mapped_column(Fixed2())
    right_k_axis: Mapped[int | None] = mapped_column(Integer)
    left_k1: Mapped[Decimal | None] = mapped_column(Fixed2())
    left_k2: Mapped[Decimal | None] = mapped_column(Fixed2())
    left_k_axis: Mapped[int | None] = mapped_column(Integer)
    iop_right: Mapped[Decimal | None] = mapped_column(Fixed2())
    iop_left: Mapped[Decimal | None] = mapped_column(Fixed2())
    slit_lamp_notes: Mapped[str | None] = mapped_column(Text)
    fundus_notes: Mapped[str | None] = mapped_column(Text)
    recommendations: Mapped[str | None] = mapped_column(Text)
    # The UK sight-test record (revision 0014). The structured blocks are JSON: their
    # shape is the API's (ils.web.schemas.sight_test), they are read whole, never
    # queried field by field, and new findings need no migration.
    #: Reason for visit, symptoms, general health, medication, family ocular history.
    history: Mapped[dict[str, object] | None] = mapped_column(JSON)
    #: Unaided / aided distance and near acuity per eye and binocular.
    acuity: Mapped[dict[str, object] | None] = mapped_column(JSON)
    #: Cover test, motility, convergence, stereo.
    binocular_vision: Mapped[dict[str, object] | None] = mapped_column(JSON)
    #: Method and per-eye media, disc (C/D ratio), macula, vessels, periphery.
    ophthalmoscopy: Mapped[dict[str, object] | None] = mapped_column(JSON)
    outcome: Mapped[SightTestOutcome | None] = mapped_column(StrEnumType(SightTestOutcome, 16))
    referral_reason: Mapped[str | None] = mapped_column(Text)
    recall_date: Mapped[date | None] = mapped_column(Date)
    optometrist_name: Mapped[str | None] = mapped_column(String(100))
    #: General Optical Council registration, e.g. ``01-12345``.
    goc_number: Mapped[str | None] = mapped_column(String(16))

    patient: Mapped[Patient] = relationship(back_populates="examinations")
    examiner: Mapped[User | None] = relationship()

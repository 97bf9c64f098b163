"""Patient and examination use cases of a practice.

Patients never leave their practice: every query here filters on the practice, and a
patient id from another practice is treated exactly like one that does not exist.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

from pydantic import BaseModel
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ils.domain.clinical import Examination, Patient
from ils.domain.companies import Company, User
from ils.errors import ConflictError
from ils.jobs.helpers import JobHelpers
from ils.web.schemas.clinical import ExaminationCreate, ExaminationEye, PatientCreate
from ils.web.services.common import field_error

#: Clocks of practice PCs drift; an examination "a minute from now" is not an error.
CLOCK_SKEW: Final = timedelta(minutes=5)
DUPLICATE_REFERENCE: Final = "another patient of your practice has this reference"


async def create_patient(
    session: AsyncSession, practice: Company, body: PatientCreate, now: datetime
) -> Patient:
    """Add a patient to the practice.

    Raises:
        InvalidFieldError: a date of birth after today (in the practice's zone).
        ConflictError: the practice already uses ``reference`` (409).
    """
    if body.date_of_birth is not None and body.date_of_birth > practice.local_date(now):
        raise field_error("date_of_birth", "must not be in the future")
    if body.reference is not None:
        taken = await session.scalar(
            select(Patient.id).where(
                Patient.company_id == practice.id, Patient.reference == body.reference
            )
        )
        if taken is not None:
            raise ConflictError(DUPLICATE_REFERENCE)
    patient = Patient(company_id=practice.id, **body.model_dump())
    session.add(patient)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:  # a concurrent request took the reference first
        raise ConflictError(DUPLICATE_REFERENCE) from None
    return patient


async def list_patients(
    session: AsyncSession, practice: Company, search: str | None, limit: int, offset: int
) -> tuple[list[Patient], int]:
    """A page of the practice's patients by name; ``search`` matches the start of a
    first name, last name or reference, ignoring case."""
    query = select(Patient).where(Patient.company_id == practice.id)
    if search:
        escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"{escaped}%"
        query = query.where(
            or_(
                Patient.last_name.ilike(pattern, escape="\\"),
                Patient.first_name.ilike(pattern, escape="\\"),
                Patient.reference.ilike(pattern, escape="\\"),
            )
        )
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(
        query.order_by(Patient.last_name, Patient.first_name, Patient.id)
        .limit(limit)
        .offset(offset)
    )
    return list(rows.all()), int(total or 0)


def _eye_columns(side: str, eye: ExaminationEye) -> dict[str, object]:
    refraction = eye.refraction
    return {
        f"va_{side}": eye.va,
        f"{side}_sphere": refraction.sphere if refraction else None,
        f"{side}_cylinder": refraction.cylinder if refraction else None,
        f"{side}_axis": refraction.axis if refraction else None,
        f"{side}_add": refraction.add if refraction else None,
        f"{side}_k1": eye.k1,
        f"{side}_k2": eye.k2,
        f"{side}_k_axis": eye.k_axis,
        f"iop_{side}": eye.iop,
    }


def _sight_test_columns(body: ExaminationCreate) -> dict[str, object]:
    """The sight-test record's columns; blocks stored as sent, without empty fields."""

    def block(part: BaseModel | None) -> dict[str, object] | None:
        return None if part is None else part.model_dump(mode="json", exclude_none=True)

    return {
        "history": block(body.history),
        "acuity": block(body.acuity),
        "binocular_vision": block(body.binocular_vision),
        "ophthalmoscopy": block(body.ophthalmoscopy),
        "outcome": body.outcome,
        "referral_reason": body.referral_reason,
        "recall_date": body.recall_date,
        "optometrist_name": body.optometrist_name,
        "goc_number": body.goc_number,
    }


async def create_examination(
    session: AsyncSession,
    helpers: JobHelpers,
    user: User,
    body: ExaminationCreate,
    now: datetime,
) -> Examination:
    """Record an examination by ``user`` and queue its examination-form PDF.

    Raises:
        InvalidFieldError: ``patient_id`` is not a patient of the practice, or
            ``examined_at`` lies in the future.
    """
    patient = await session.scalar(
        select(Patient.id).where(
            Patient.id == body.patient_id, Patient.company_id == user.company_id
        )
    )
    if patient is None:
        raise field_error("patient_id", "must be a patient of your practice")
    # UTC, as the row reads back: the response must not depend on a reload.
    examined_at = (body.examined_at or now).astimezone(UTC)
    if examined_at > now + CLOCK_SKEW:
        raise field_error("examined_at", "must not be in the future")
    if body.recall_date is not None and body.recall_date <= examined_at.date():
        raise field_error("recall_date", "must be after the examination date")
    exam = Examination(
        company_id=user.company_id,
        patient_id=body.patient_id,
        examiner_id=user.id,
        examined_at=examined_at,
        **_eye_columns("right", body.right),
        **_eye_columns("left", body.left),
        slit_lamp_notes=body.slit_lamp_notes,
        fundus_notes=body.fundus_notes,
        recommendations=body.recommendations,
        **_sight_test_columns(body),
    )
    session.add(exam)
    await session.flush()
    await helpers.queue_examination_form_pdf(exam.id, session=session)
    return exam

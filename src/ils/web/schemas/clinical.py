"""Request and response bodies of patients and examinations.

A refraction uses the same rules as a lens order (:mod:`ils.web.schemas.prescription`),
so a practice can copy an examination's result into an order without a value that one
accepts and the other refuses.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Final

from pydantic import (
    AwareDatetime,
    EmailStr,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from ils.domain.clinical import Examination, SightTestOutcome
from ils.web.schemas.common import Day, InputModel, Line64, Line100, Notes, OutputModel, RecordId
from ils.web.schemas.prescription import Refraction, checked_when_absent, stepped
from ils.web.schemas.sight_test import AcuityIn, BinocularVisionIn, HistoryIn, OphthalmoscopyIn

EARLIEST_BIRTH: Final = date(1900, 1, 1)

# Snellen (6/6, 20/40, 6/7.5) or the low-vision notations: counts fingers, hand
# movements, perceives light, no perception of light.
VisualAcuity = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        max_length=16,
        pattern=r"^(\d{1,2}(\.\d{1,2})?/\d{1,3}(\.\d{1,2})?|CF|HM|PL|NPL)$",
    ),
]
Phone = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=3, max_length=32, pattern=r"^[0-9+()\-. ]+$"
    ),
]
# Corneal curvature: 30-60 D covers every cornea, keratoconus included.
Keratometry = Annotated[Decimal, stepped("30", "60", "0.01", "D")]
KAxis = Annotated[int, Field(ge=0, le=180)]
# General Optical Council registration of an optometrist: 01- and the number.
GocNumber = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=16, pattern=r"^01-\d{4,6}$")
]
Iop = Annotated[Decimal, stepped("0", "80", "0.01", "mmHg")]


class PatientCreate(InputModel):
    """A new patient of the signed-in practice."""

    first_name: Line100
    last_name: Line100
    reference: Line64 | None = Field(
        default=None, description="The practice's own patient number, unique per practice."
    )
    date_of_birth: Day | None = None
    email: EmailStr | None = None
    phone: Phone | None = None

    @field_validator("date_of_birth")
    @classmethod
    def _plausible_birth(cls, born: date | None) -> date | None:
        """Catch typed-in years (1880, 2208) early; today's date is the router's check."""
        if born is not None and born < EARLIEST_BIRTH:
            raise ValueError("must be after 1900-01-01")
        return born


class PatientOut(OutputModel):
    """A patient, only ever shown to their own practice."""

    id: str
    reference: str | None
    first_name: str
    last_name: str
    date_of_birth: date | None
    email: str | None
    phone: str | None
    created_at: datetime


class ExaminationEye(InputModel):
    """One eye's findings; any may be missing (an eye not examined, a test not done)."""

    va: VisualAcuity | None = Field(default=None, description="Snellen (6/6) or CF/HM/PL/NPL.")
    refraction: Refraction | None = None
    k1: Keratometry | None = None
    k2: Keratometry | None = None
    k_axis: KAxis | None = None
    iop: Iop | None = Field(default=None, description="Intraocular pressure, mmHg.")


class ExaminationCreate(InputModel):
    """An examination of one of the practice's patients by the signed-in user.

    The sight-test parts (history to GOC number) make it a UK sight-test record. An
    ``outcome`` closes the test, so it needs the optometrist's name and GOC number; a
    referral needs its reason. The recall date must follow the examination (checked
    by the service, which knows the examination's date).
    """

    patient_id: RecordId
    examined_at: AwareDatetime | None = Field(default=None, description="Default: now.")
    right: ExaminationEye = Field(default_factory=ExaminationEye)
    left: ExaminationEye = Field(default_factory=ExaminationEye)
    slit_lamp_notes: Notes | None = None
    fundus_notes: Notes | None = None
    recommendations: Notes | None = None
    history: HistoryIn | None = None
    acuity: AcuityIn | None = None
    binocular_vision: BinocularVisionIn | None = None
    ophthalmoscopy: OphthalmoscopyIn | None = None
    outcome: SightTestOutcome | None = Field(
        default=None, description="no_change, new_rx or referral."
    )
    referral_reason: Notes | None = checked_when_absent(
        "Why and to whom; required with outcome referral, refused otherwise."
    )
    recall_date: Day | None = Field(default=None, description="After the examination date.")
    optometrist_name: Line100 | None = checked_when_absent("Required with an outcome.")
    goc_number: GocNumber | None = checked_when_absent(
        "GOC registration, 01-NNNNN; required with an outcome."
    )

    @field_validator("referral_reason")
    @classmethod
    def _reason_with_referral(cls, reason: str | None, info: ValidationInfo) -> str | None:
        """A referral letter states why; a reason without a referral is a form error."""
        referral = info.data.get("outcome") == SightTestOutcome.REFERRAL
        if referral and not reason:
            raise ValueError("is required when outcome is referral")
        if reason and not referral and "outcome" in info.data:
            raise ValueError("is only recorded with outcome referral")
        return reason

    @field_validator("optometrist_name", "goc_number")
    @classmethod
    def _tester_with_outcome(cls, value: str | None, info: ValidationInfo) -> str | None:
        """Whoever gives the outcome signs the record: name and registration."""
        if value is None and info.data.get("outcome") is not None:
            raise ValueError("is required when an outcome is given")
        return value


class RefractionOut(OutputModel):
    """A refraction as stored."""

    sphere: Decimal | None
    cylinder: Decimal | None
    axis: int | None
    add: Decimal | None


class ExaminationEyeOut(OutputModel):
    """One eye's findings as stored."""

    va: str | None
    refraction: RefractionOut | None
    k1: Decimal | None
    k2: Decimal | None
    k_axis: int | None
    iop: Decimal | None


class ExaminationOut(OutputModel):
    """An examination with both eyes' findings."""

    id: str
    patient_id: str
    examiner_id: str | None
    examined_at: datetime
    right: ExaminationEyeOut
    left: ExaminationEyeOut
    slit_lamp_notes: str | None
    fundus_notes: str | None
    recommendations: str | None
    history: dict[str, object] | None
    acuity: dict[str, object] | None
    binocular_vision: dict[str, object] | None
    ophthalmoscopy: dict[str, object] | None
    outcome: SightTestOutcome | None
    referral_reason: str | None
    recall_date: date | None
    optometrist_name: str | None
    goc_number: str | None
    created_at: datetime

    @classmethod
    def build(cls, exam: Examination) -> ExaminationOut:
        """From the flat row (``right_sphere``, ``va_right``, ``iop_left`` ...)."""

        def eye(side: str) -> ExaminationEyeOut:
            refraction = (
                None
                if getattr(exam, f"{side}_sphere") is None
                else RefractionOut.read_from(exam, prefix=f"{side}_")
            )
            return ExaminationEyeOut.read_from(
                exam,
                prefix=f"{side}_",
                va=getattr(exam, f"va_{side}"),
                refraction=refraction,
                iop=getattr(exam, f"iop_{side}"),
            )

        return cls.read_from(exam, right=eye("right"), left=eye("left"))

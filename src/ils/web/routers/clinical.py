"""Patients and eye examinations: a practice's clinical records.

Who may (docs/platform.md): practice users other than lab_tech (platform_admin,
admin, company_admin, staff) add and list patients and record and read
examinations. Labs and suppliers never see patients; another practice's examination
answers 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from ils.domain.clinical import Examination
from ils.domain.companies import CompanyKind, Role, User
from ils.domain.scoping import get_scoped
from ils.web.deps import CurrentCompany, HelpersDep, PagingDep, SessionDep, StateDep, require_roles
from ils.web.schemas.clinical import ExaminationCreate, ExaminationOut, PatientCreate, PatientOut
from ils.web.schemas.common import Line100, Page, error_responses
from ils.web.services import clinical as service
from ils.web.services.common import now_utc

router = APIRouter(tags=["clinical"])

PracticeUser = Annotated[
    User,
    Depends(
        require_roles(Role.ADMIN, Role.COMPANY_ADMIN, Role.STAFF, kinds=[CompanyKind.PRACTICE])
    ),
]


@router.post(
    "/api/patients",
    status_code=201,
    summary="Add a patient",
    responses=error_responses(401, 403, 409),
)
async def create_patient(
    body: PatientCreate,
    user: PracticeUser,
    company: CurrentCompany,
    session: SessionDep,
    state: StateDep,
) -> PatientOut:
    """Add a patient to your practice (409 for a reference already in use)."""
    patient = await service.create_patient(session, company, body, now_utc(state.clock))
    return PatientOut.model_validate(patient)


@router.get("/api/patients", summary="List patients", responses=error_responses(401, 403))
async def list_patients(
    user: PracticeUser,
    company: CurrentCompany,
    session: SessionDep,
    paging: PagingDep,
    search: Annotated[
        Line100 | None, Query(description="Start of a first name, last name or reference.")
    ] = None,
) -> Page[PatientOut]:
    """Your practice's patients by last name."""
    rows, total = await service.list_patients(session, company, search, paging.limit, paging.offset)
    return paging.page(rows, total, PatientOut.model_validate)


@router.post(
    "/api/examinations",
    status_code=201,
    summary="Record an examination",
    responses=error_responses(401, 403),
)
async def create_examination(
    body: ExaminationCreate,
    user: PracticeUser,
    session: SessionDep,
    helpers: HelpersDep,
    state: StateDep,
) -> ExaminationOut:
    """Record an eye examination of one of your patients, examined by you.

    Queues: the examination-form PDF.
    """
    exam = await service.create_examination(session, helpers, user, body, now_utc(state.clock))
    return ExaminationOut.build(exam)


@router.get(
    "/api/examinations/{examination_id}",
    summary="One examination",
    responses=error_responses(401, 403, 404),
)
async def get_examination(
    examination_id: str, user: PracticeUser, session: SessionDep
) -> ExaminationOut:
    """An examination of your practice."""
    exam = await get_scoped(session, Examination, examination_id, user.company_id)
    return ExaminationOut.build(exam)

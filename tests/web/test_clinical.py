"""Patients and examinations over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ils.domain.clinical import Examination, Patient
from ils.domain.companies import CompanyKind, Role
from ils.web.state import WebState
from tests.web.api_support import World, all_jobs, build_world, count, errors_of, queued
from tests.web.conftest import DbMaker, Factory, SignedIn

PRACTICE, LAB = CompanyKind.PRACTICE, CompanyKind.LAB

EXAM: dict[str, Any] = {
    "examined_at": "2026-03-02T09:30:00Z",
    "right": {
        "va": "6/6",
        "refraction": {"sphere": -1.25, "cylinder": -0.5, "axis": 90, "add": 1.75},
        "k1": 43.25,
        "k2": 44.0,
        "k_axis": 90,
        "iop": 15,
    },
    "left": {"va": "6/9", "refraction": {"sphere": "-1.00"}, "iop": 16.5},
    "slit_lamp_notes": "Clear.",
    "recommendations": "Review in two years.",
}


@pytest.fixture
async def world(factory: Factory, signed_in: SignedIn) -> World:
    """A practice (admin, company_admin, staff, lab_tech) and a lab (staff)."""
    return await build_world(
        factory,
        signed_in,
        {
            PRACTICE: (Role.ADMIN, Role.COMPANY_ADMIN, Role.STAFF, Role.LAB_TECH),
            LAB: (Role.STAFF,),
        },
    )


async def add_patient(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {"first_name": "Ada", "last_name": "Lovelace", **fields}
    response = await client.post("/api/patients", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


# -- patients ------------------------------------------------------------------------


async def test_add_and_list_patients(world: World, signed_in: SignedIn) -> None:
    staff = world.client(PRACTICE)
    ada = await add_patient(
        staff,
        reference="P-001",
        date_of_birth="1980-12-10",
        email="ada@example.com",
        phone="+44 20 7946 0000",
    )
    assert (ada["reference"], ada["date_of_birth"], ada["email"]) == (
        "P-001",
        "1980-12-10",
        "ada@example.com",
    )
    await add_patient(world.client(PRACTICE, Role.ADMIN), first_name="Grace", last_name="Hopper")
    await add_patient(staff, first_name="Alan", last_name="Turing", reference="P-003")

    page = (await staff.get("/api/patients")).json()
    assert page["total"] == 3
    assert [p["last_name"] for p in page["items"]] == ["Hopper", "Lovelace", "Turing"]
    assert [
        p["last_name"] for p in (await staff.get("/api/patients?search=tur")).json()["items"]
    ] == ["Turing"]
    by_reference = (await staff.get("/api/patients", params={"search": "P-00"})).json()
    assert by_reference["total"] == 2
    assert (await staff.get("/api/patients", params={"search": "%"})).json()["total"] == 0
    second = (await staff.get("/api/patients", params={"limit": 1, "offset": 1})).json()
    assert [p["last_name"] for p in second["items"]] == ["Lovelace"]

    other, _ = await signed_in(Role.ADMIN, PRACTICE)
    assert (await other.get("/api/patients")).json()["total"] == 0


async def test_patient_rules(
    world: World, db: DbMaker, client: httpx.AsyncClient, signed_in: SignedIn
) -> None:
    staff = world.client(PRACTICE)
    body = {"first_name": "Ada", "last_name": "Lovelace"}
    assert (await client.post("/api/patients", json=body)).status_code == 401
    assert (await client.get("/api/patients")).status_code == 401
    for forbidden in (world.client(PRACTICE, Role.LAB_TECH), world.client(LAB)):
        assert (await forbidden.post("/api/patients", json=body)).status_code == 403
        assert (await forbidden.get("/api/patients")).status_code == 403

    await add_patient(staff, reference="P-1")
    duplicate = await staff.post("/api/patients", json={**body, "reference": "P-1"})
    assert duplicate.status_code == 409
    other, _ = await signed_in(Role.STAFF, PRACTICE)
    assert (await other.post("/api/patients", json={**body, "reference": "P-1"})).status_code == 201

    for bad, field in (
        ({"first_name": "Ada"}, "last_name"),
        ({**body, "email": "not-an-address"}, "email"),
        ({**body, "date_of_birth": "2999-01-01"}, "date_of_birth"),
        ({**body, "date_of_birth": "1850-01-01"}, "date_of_birth"),
        ({**body, "phone": "call me"}, "phone"),
        ({**body, "first_name": "A\nB"}, "first_name"),
        ({**body, "nickname": "Countess"}, "nickname"),
    ):
        assert field in errors_of(await staff.post("/api/patients", json=bad)), bad
    assert await count(db, Patient) == 2


# -- examinations --------------------------------------------------------------------


async def test_record_and_read_an_examination(world: World, state: WebState) -> None:
    staff = world.client(PRACTICE)
    patient = await add_patient(staff)

    response = await staff.post("/api/examinations", json={**EXAM, "patient_id": patient["id"]})

    assert response.status_code == 201, response.text
    exam = response.json()
    assert exam["patient_id"] == patient["id"]
    assert exam["examiner_id"] == world.user(PRACTICE).id
    assert exam["examined_at"].startswith("2026-03-02T09:30:00")
    assert exam["right"] == {
        "va": "6/6",
        "refraction": {"sphere": "-1.25", "cylinder": "-0.50", "axis": 90, "add": "1.75"},
        "k1": "43.25",
        "k2": "44.00",
        "k_axis": 90,
        "iop": "15.00",
    }
    assert exam["left"]["refraction"] == {
        "sphere": "-1.00",
        "cylinder": "0.00",
        "axis": None,
        "add": None,
    }
    assert exam["left"]["iop"] == "16.50"
    forms = await queued(state, "pdf", "examination-form")
    assert [job.data for job in forms] == [
        {"type": "examination-form", "examinationId": exam["id"]}
    ]

    again = await world.client(PRACTICE, Role.COMPANY_ADMIN).get(f"/api/examinations/{exam['id']}")
    assert again.status_code == 200
    assert again.json() == exam


async def test_an_examination_defaults_to_now_with_no_findings(world: World) -> None:
    staff = world.client(PRACTICE)
    patient = await add_patient(staff)
    response = await staff.post("/api/examinations", json={"patient_id": patient["id"]})
    assert response.status_code == 201, response.text
    exam = response.json()
    assert exam["right"]["refraction"] is None
    assert exam["examined_at"]


def _right(**refraction: Any) -> dict[str, Any]:
    return {"right": {"refraction": refraction}}


BAD_EXAMS: list[tuple[str, dict[str, Any], str]] = [
    ("sphere 0.3", _right(sphere=0.3), "right.refraction.sphere"),
    ("axis 0", _right(sphere=-1, cylinder=-1, axis=0), "right.refraction.axis"),
    ("axis missing", _right(sphere=-1, cylinder=-1), "right.refraction.axis"),
    ("add 5", _right(sphere=1, add=5), "right.refraction.add"),
    ("VA 7", {"left": {"va": "7"}}, "left.va"),
    ("IOP 90", {"left": {"iop": 90}}, "left.iop"),
    ("K 70", {"left": {"k1": 70}}, "left.k1"),
    ("naive time", {"examined_at": "2026-03-02T09:30:00"}, "examined_at"),
    ("future", {"examined_at": "2999-03-02T09:30:00Z"}, "examined_at"),
]


@pytest.mark.parametrize(("case", "changes", "field"), BAD_EXAMS, ids=[c[0] for c in BAD_EXAMS])
async def test_bad_examinations_answer_422(
    world: World, state: WebState, db: DbMaker, case: str, changes: dict[str, Any], field: str
) -> None:
    staff = world.client(PRACTICE)
    patient = await add_patient(staff)
    response = await staff.post("/api/examinations", json={"patient_id": patient["id"], **changes})
    assert field in errors_of(response)
    assert await count(db, Examination) == 0
    assert await all_jobs(state) == 0


async def test_examination_of_an_unknown_or_foreign_patient_answers_422(
    world: World, state: WebState, db: DbMaker, signed_in: SignedIn
) -> None:
    other, _ = await signed_in(Role.STAFF, PRACTICE)
    foreign = await add_patient(other)
    for patient_id in ("0" * 32, foreign["id"]):
        response = await world.client(PRACTICE).post(
            "/api/examinations", json={**EXAM, "patient_id": patient_id}
        )
        assert list(errors_of(response)) == ["patient_id"]
    assert await count(db, Examination) == 0
    assert await all_jobs(state) == 0


async def test_examination_access(
    world: World, signed_in: SignedIn, client: httpx.AsyncClient
) -> None:
    staff = world.client(PRACTICE)
    patient = await add_patient(staff)
    body = {**EXAM, "patient_id": patient["id"]}
    exam = (await staff.post("/api/examinations", json=body)).json()
    path = f"/api/examinations/{exam['id']}"

    assert (await client.post("/api/examinations", json=body)).status_code == 401
    assert (await client.get(path)).status_code == 401
    for forbidden in (world.client(PRACTICE, Role.LAB_TECH), world.client(LAB)):
        assert (await forbidden.post("/api/examinations", json=body)).status_code == 403
        assert (await forbidden.get(path)).status_code == 403
    other, _ = await signed_in(Role.ADMIN, PRACTICE)
    response = await other.get(path)
    assert (response.status_code, response.json()) == (404, {"detail": "not found"})
    assert (await staff.get(f"/api/examinations/{'0' * 32}")).status_code == 404


# -- the UK sight-test record (issue 20) ---------------------------------------------

SIGHT_TEST: dict[str, Any] = {
    "history": {"reason_for_visit": "Routine", "symptoms": "Blurred near vision"},
    "acuity": {
        "right": {"unaided_distance": "6/12", "aided_distance": "6/6", "aided_near": "N5"},
        "left": {"unaided_distance": "0.30", "aided_near": "N6"},
        "binocular": {"aided_distance": "6/5"},
    },
    "binocular_vision": {"cover_test_near": "4 exophoria, good recovery", "motility": "full"},
    "ophthalmoscopy": {
        "method": "slit_lamp_binocular_indirect",
        "right": {"media": "clear", "cup_disc_ratio": 0.3},
        "left": {"macula": "drusen"},
    },
    "outcome": "referral",
    "referral_reason": "Drusen at the left macula: routine referral to ophthalmology.",
    "recall_date": "2027-03-02",
    "optometrist_name": "Priya Shah",
    "goc_number": "01-23456",
}


async def test_a_sight_test_record_is_stored_and_read_back(world: World, db: DbMaker) -> None:
    staff = world.client(PRACTICE)
    patient = await add_patient(staff)
    body = {**EXAM, **SIGHT_TEST, "patient_id": patient["id"]}
    response = await staff.post("/api/examinations", json=body)
    assert response.status_code == 201, response.text
    exam = (await staff.get(f"/api/examinations/{response.json()['id']}")).json()
    for key in ("history", "binocular_vision", "outcome", "referral_reason", "recall_date"):
        assert exam[key] == SIGHT_TEST[key]
    assert exam["acuity"]["right"] == SIGHT_TEST["acuity"]["right"]
    assert exam["ophthalmoscopy"]["right"] == {"media": "clear", "cup_disc_ratio": 0.3}
    assert (exam["optometrist_name"], exam["goc_number"]) == ("Priya Shah", "01-23456")
    async with db() as session:
        row = await session.get(Examination, exam["id"])
        assert row is not None
        assert row.outcome == "referral"
        assert str(row.recall_date) == "2027-03-02"


def _test(**changes: Any) -> dict[str, Any]:
    return {**SIGHT_TEST, **changes}


BAD_SIGHT_TESTS: list[tuple[str, dict[str, Any], str]] = [
    ("referral without a reason", _test(referral_reason=None), "referral_reason"),
    ("reason without a referral", _test(outcome="no_change"), "referral_reason"),
    ("outcome without a GOC number", _test(goc_number=None), "goc_number"),
    ("outcome without the optometrist", _test(optometrist_name=None), "optometrist_name"),
    ("GOC number of a dispensing optician", _test(goc_number="02-23456"), "goc_number"),
    ("unknown outcome", _test(outcome="spectacles"), "outcome"),
    ("recall before the test", _test(recall_date="2026-03-01"), "recall_date"),
    ("recall on the day", _test(recall_date="2026-03-02"), "recall_date"),
    ("near acuity in Snellen letters", _test(acuity={"left": {"aided_near": "J5x"}}), "acuity"),
    (
        "C/D ratio above 1",
        _test(ophthalmoscopy={"left": {"cup_disc_ratio": 1.2}}),
        "ophthalmoscopy",
    ),
]


@pytest.mark.parametrize(
    ("case", "changes", "field"), BAD_SIGHT_TESTS, ids=[c[0] for c in BAD_SIGHT_TESTS]
)
async def test_bad_sight_test_records_answer_422(
    world: World, state: WebState, db: DbMaker, case: str, changes: dict[str, Any], field: str
) -> None:
    staff = world.client(PRACTICE)
    patient = await add_patient(staff)
    body = {**EXAM, **changes, "patient_id": patient["id"]}
    response = await staff.post("/api/examinations", json=body)
    errors = errors_of(response)
    assert any(name.startswith(field) for name in errors), errors
    assert await count(db, Examination) == 0
    assert await all_jobs(state) == 0


async def test_the_examination_form_prints_the_stored_sight_test(
    world: World, state: WebState
) -> None:
    from ils.workers.pdf.generate import DocumentGenerator, generate_examination_form
    from ils.workers.pdf.pool import InlineRenderer
    from tests.workers.pdf_support import pdf_text

    staff = world.client(PRACTICE)
    patient = await add_patient(staff)
    body = {**EXAM, **SIGHT_TEST, "patient_id": patient["id"]}
    exam = (await staff.post("/api/examinations", json=body)).json()
    generator = DocumentGenerator.for_context(
        state.system.worker_context(), renderer=InlineRenderer()
    )
    document = await generate_examination_form(generator, exam["id"])
    response = await staff.get(f"/api/documents/{document.id}")
    assert response.status_code == 200
    text = " ".join(pdf_text(response.content).split())
    for expected in (
        "Symptoms Blurred near vision",
        "R 6/12 6/6 - N5",
        "L 0.30 - - N6",
        "Both - 6/5 - -",
        "Cover test (near) 4 exophoria, good recovery",
        "Method slit lamp binocular indirect",
        "C/D ratio 0.3 -",
        "Macula - drusen",
        "Outcome Referral",
        "Recall date 2 Mar 2027",
        "Drusen at the left macula: routine referral to ophthalmology.",
        "Name Priya Shah",
        "GOC registration no. 01-23456",
        "Signature",
    ):
        assert expected in text, expected

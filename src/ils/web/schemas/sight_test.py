"""Request bodies of the UK sight-test parts of an examination.

Each block is optional (a record is built up as the test goes) and stored whole as
JSON on the examination (``ils.domain.clinical.Examination``); the keys are those of
:mod:`ils.domain.sight_test`, which also gives the examination form its labels.
Free text is bounded like every other note; acuities follow the notations in use:
Snellen or logMAR at distance, N-point or Snellen at near.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from ils.web.schemas.common import InputModel, Line100, Line500

DistanceAcuity = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        max_length=16,
        pattern=r"^(\d{1,2}(\.\d{1,2})?/\d{1,3}(\.\d{1,2})?|-?\d\.\d{1,2}|CF|HM|PL|NPL)$",
    ),
]
NearAcuity = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        max_length=16,
        pattern=r"^(N\d{1,2}(\.\d)?|\d{1,2}(\.\d{1,2})?/\d{1,3}(\.\d{1,2})?|CF|HM|PL|NPL)$",
    ),
]
CupDisc = Annotated[float, Field(ge=0, le=1, description="Vertical cup/disc ratio 0..1.")]


class HistoryIn(InputModel):
    """History and symptoms taken before the test."""

    reason_for_visit: Line500 | None = None
    symptoms: Line500 | None = None
    general_health: Line500 | None = None
    medication: Line500 | None = None
    ocular_history: Line500 | None = None
    family_ocular_history: Line500 | None = None
    occupation_and_hobbies: Line500 | None = None


class EyeAcuityIn(InputModel):
    """One eye's (or both eyes') acuity unaided and with the current correction."""

    unaided_distance: DistanceAcuity | None = Field(default=None, description="6/9, 0.20, CF")
    aided_distance: DistanceAcuity | None = None
    unaided_near: NearAcuity | None = Field(default=None, description="N5, N8 ...")
    aided_near: NearAcuity | None = None


class AcuityIn(InputModel):
    """Acuity per eye and binocular."""

    right: EyeAcuityIn = Field(default_factory=EyeAcuityIn)
    left: EyeAcuityIn = Field(default_factory=EyeAcuityIn)
    binocular: EyeAcuityIn = Field(default_factory=EyeAcuityIn)


class BinocularVisionIn(InputModel):
    """Binocular vision assessment."""

    cover_test_distance: Line100 | None = Field(default=None, description="e.g. orthophoria")
    cover_test_near: Line100 | None = Field(default=None, description="e.g. 4 exophoria, good rec")
    motility: Line100 | None = None
    near_point_of_convergence: Line100 | None = Field(default=None, description="e.g. 8 cm")
    stereopsis: Line100 | None = None
    pupils: Line100 | None = Field(default=None, description="e.g. PERRLA, no RAPD")


class FundusEyeIn(InputModel):
    """One eye's ophthalmoscopy findings."""

    media: Line100 | None = None
    disc: Line100 | None = None
    cup_disc_ratio: CupDisc | None = None
    vessels: Line100 | None = None
    macula: Line100 | None = None
    periphery: Line100 | None = None


class OphthalmoscopyIn(InputModel):
    """Internal examination of both eyes and how it was done."""

    method: (
        Literal["direct", "indirect", "slit_lamp_binocular_indirect", "retinal_photography", "oct"]
        | None
    ) = None
    right: FundusEyeIn = Field(default_factory=FundusEyeIn)
    left: FundusEyeIn = Field(default_factory=FundusEyeIn)

"""The parts of a UK sight-test record and their printed labels.

The Sight Testing (Examination and Prescription) regulations and the College of
Optometrists' guidance expect a record to show the history taken, vision and acuity
unaided and with correction at distance and near, the binocular vision assessment,
an internal examination of the eye (ophthalmoscopy), the outcome given to the
patient (no change, a new prescription or a referral, with its reason), when to come
back, and who tested: name, GOC registration and signature. The API schema
(``ils.web.schemas.sight_test``) and the examination form both read the keys and
labels here, so a field added once appears in both.
"""

from __future__ import annotations

from typing import Final

from ils.domain.clinical import SightTestOutcome

HISTORY: Final = (
    ("reason_for_visit", "Reason for visit"),
    ("symptoms", "Symptoms"),
    ("general_health", "General health"),
    ("medication", "Medication"),
    ("ocular_history", "Ocular history"),
    ("family_ocular_history", "Family ocular history"),
    ("occupation_and_hobbies", "Occupation / hobbies / driving"),
)

ACUITY: Final = (
    ("unaided_distance", "Unaided distance"),
    ("aided_distance", "Aided distance"),
    ("unaided_near", "Unaided near"),
    ("aided_near", "Aided near"),
)

BINOCULAR_VISION: Final = (
    ("cover_test_distance", "Cover test (distance)"),
    ("cover_test_near", "Cover test (near)"),
    ("motility", "Ocular motility"),
    ("near_point_of_convergence", "Near point of convergence"),
    ("stereopsis", "Stereopsis"),
    ("pupils", "Pupils"),
)

OPHTHALMOSCOPY: Final = (
    ("media", "Media"),
    ("disc", "Optic disc"),
    ("cup_disc_ratio", "C/D ratio"),
    ("vessels", "Vessels"),
    ("macula", "Macula"),
    ("periphery", "Periphery"),
)

OPHTHALMOSCOPY_METHODS: Final = (
    "direct",
    "indirect",
    "slit_lamp_binocular_indirect",
    "retinal_photography",
    "oct",
)


def outcome_label(outcome: SightTestOutcome) -> str:
    """The outcome as the statement given to the patient words it."""
    return {
        SightTestOutcome.NO_CHANGE: "No change in prescription",
        SightTestOutcome.NEW_RX: "New prescription issued",
        SightTestOutcome.REFERRAL: "Referral",
    }[outcome]

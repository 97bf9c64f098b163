"""The examination form: the practice's clinical record, marked confidential.

Unlike lab documents it names the patient: it is filed with the patient's record at
the practice and goes nowhere else. The marking is on every page, header and footer.
"""

from __future__ import annotations

from ils.workers.pdf import fmt
from ils.workers.pdf.data import ExaminationData, EyeExamination
from ils.workers.pdf.layout import Column, Sheet

CONFIDENTIAL = "CONFIDENTIAL - patient clinical record"


def _refraction_row(label: str, eye: EyeExamination) -> list[str]:
    return [
        label,
        eye.acuity or fmt.BLANK,
        fmt.dioptres(eye.sphere),
        fmt.dioptres(eye.cylinder),
        fmt.axis(eye.axis),
        fmt.dioptres(eye.add),
    ]


def _keratometry_row(label: str, eye: EyeExamination) -> list[str]:
    return [label, fmt.plain(eye.k1), fmt.plain(eye.k2), fmt.axis(eye.k_axis), fmt.plain(eye.iop)]


def render_examination_form(data: ExaminationData) -> bytes:
    """The examination form as PDF bytes."""
    sheet = Sheet(
        data.letterhead, "Examination form", data.reference, data.meta, confidential=CONFIDENTIAL
    )
    sheet.fields(
        [
            ("Patient", data.patient_name),
            ("Examined", data.examined_at),
            ("Patient ref.", data.patient_reference or fmt.BLANK),
            ("Examiner", data.examiner_name or fmt.BLANK),
            ("Date of birth", fmt.day(data.patient_birth_date)),
            ("Record", data.reference),
        ]
    )
    sheet.heading("Visual acuity and refraction")
    sheet.table(
        [
            Column("Eye", 0.8),
            Column("VA", 1, "right"),
            Column("Sphere", 1, "right"),
            Column("Cylinder", 1, "right"),
            Column("Axis", 0.8, "right"),
            Column("Add", 0.9, "right"),
        ],
        [_refraction_row("R", data.right), _refraction_row("L", data.left)],
        size=9.5,
    )
    sheet.heading("Keratometry and intraocular pressure")
    sheet.table(
        [
            Column("Eye", 0.8),
            Column("K1 (D)", 1, "right"),
            Column("K2 (D)", 1, "right"),
            Column("K axis", 1, "right"),
            Column("IOP (mmHg)", 1.2, "right"),
        ],
        [_keratometry_row("R", data.right), _keratometry_row("L", data.left)],
        size=9.5,
    )
    for title, text in (
        ("Slit lamp findings", data.slit_lamp_notes),
        ("Fundus findings", data.fundus_notes),
        ("Recommendations", data.recommendations),
    ):
        sheet.heading(title)
        sheet.paragraph(text or "None recorded.")
    return sheet.finish()

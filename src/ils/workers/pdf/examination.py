"""The examination form: the practice's clinical record, marked confidential.

Unlike lab documents it names the patient: it is filed with the patient's record at
the practice and goes nowhere else. The marking is on every page, header and footer.

It stands as a UK sight-test record: history and symptoms, acuity unaided and aided
at distance and near, refraction, binocular vision, ophthalmoscopy, the outcome
(with a referral's reason), the recall date, and the optometrist's name, GOC number
and a signature line. Sections not recorded say so rather than vanish, so a reader
tells "not done" from "page missing".
"""

from __future__ import annotations

from reportlab.lib import colors
from reportlab.lib.units import mm

from ils.domain import sight_test
from ils.workers.pdf import fmt
from ils.workers.pdf.data import ExaminationData, EyeExamination, SightTestRecord
from ils.workers.pdf.layout import FONT, GREY, Column, Sheet
from ils.workers.pdf.prescription import POWERS, eye_table

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


def _acuity_row(label: str, eye: EyeExamination) -> list[str]:
    return [
        label,
        eye.unaided_distance or fmt.BLANK,
        eye.aided_distance or fmt.BLANK,
        eye.unaided_near or fmt.BLANK,
        eye.aided_near or fmt.BLANK,
    ]


ACUITY_COLUMNS = eye_table(
    ("Unaided distance", 1.2), ("Aided distance", 1.2), ("Unaided near", 1.2), ("Aided near", 1.2)
)
NOT_RECORDED = "Not recorded."
_ACUITY_KEYS = sight_test.ACUITY
SIGNATURE_LINE = 70 * mm


def _pairs(sheet: Sheet, pairs: tuple[tuple[str, str], ...]) -> None:
    if pairs:
        sheet.fields(list(pairs), columns=1, label_share=0.3)
    else:
        sheet.paragraph(NOT_RECORDED)


def _ophthalmoscopy(sheet: Sheet, data: ExaminationData) -> None:
    record = data.sight_test
    sheet.heading("Ophthalmoscopy")
    if record.ophthalmoscopy_method:
        sheet.fields([("Method", record.ophthalmoscopy_method)], columns=1, label_share=0.3)
    labels = [label for label, _ in data.right.fundus + data.left.fundus]
    rows = []
    for label in dict.fromkeys(labels):  # every finding once, in the form's order
        right, left = dict(data.right.fundus), dict(data.left.fundus)
        rows.append([label, right.get(label, fmt.BLANK), left.get(label, fmt.BLANK)])
    if rows:
        columns = (Column("Finding", 1), Column("Right", 1.5), Column("Left", 1.5))
        sheet.table(columns, rows, size=9)
    elif not record.ophthalmoscopy_method:
        sheet.paragraph(NOT_RECORDED)


def _outcome(sheet: Sheet, record: SightTestRecord) -> None:
    sheet.heading("Outcome")
    sheet.fields(
        [
            ("Outcome", record.outcome or fmt.BLANK),
            ("Recall date", fmt.day(record.recall_date)),
        ]
    )
    if record.referral_reason:
        sheet.fields([("Referral reason", "")], columns=1)
        sheet.paragraph(record.referral_reason)
    sheet.heading("Optometrist")
    sheet.fields(
        [
            ("Name", record.optometrist_name or fmt.BLANK),
            ("GOC registration no.", record.goc_number or fmt.BLANK),
        ]
    )
    # A line to sign by hand: the record is signed by the optometrist who tested.
    sheet.room(14 * mm)
    c = sheet.canvas
    base = sheet.y - 11 * mm
    c.setStrokeColor(colors.black)
    c.setLineWidth(0.6)
    c.line(sheet.left + 22 * mm, base, sheet.left + 22 * mm + SIGNATURE_LINE, base)
    c.line(sheet.right - 45 * mm, base, sheet.right, base)
    c.setFont(FONT, 8)
    c.setFillColor(GREY)
    c.drawString(sheet.left, base + 1 * mm, "Signature")
    c.drawString(sheet.right - 57 * mm, base + 1 * mm, "Date")
    c.setFillColor(colors.black)
    sheet.y = base - 3 * mm


REFRACTION_COLUMNS = eye_table(("VA", 1.0), *POWERS)
KERATOMETRY_COLUMNS = eye_table(
    ("K1 (D)", 1.0), ("K2 (D)", 1.0), ("K axis", 1.0), ("IOP (mmHg)", 1.2)
)


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
    record = data.sight_test
    sheet.heading("History and symptoms")
    _pairs(sheet, record.history)
    sheet.heading("Vision and acuity")
    binocular = dict(record.binocular_acuity)
    sheet.table(
        ACUITY_COLUMNS,
        [
            _acuity_row("R", data.right),
            _acuity_row("L", data.left),
            ["Both", *(binocular.get(label, fmt.BLANK) for _, label in _ACUITY_KEYS)],
        ],
        size=9.5,
    )
    # Both tables of findings list the right eye, then the left, as every clinical form.
    for title, columns, row in (
        ("Refraction (VA with new Rx)", REFRACTION_COLUMNS, _refraction_row),
        ("Keratometry and intraocular pressure", KERATOMETRY_COLUMNS, _keratometry_row),
    ):
        sheet.heading(title)
        sheet.table(columns, [row("R", data.right), row("L", data.left)], size=9.5)
    sheet.heading("Binocular vision")
    _pairs(sheet, record.binocular_vision)
    _ophthalmoscopy(sheet, data)
    for title, text in (
        ("Slit lamp findings", data.slit_lamp_notes),
        ("Fundus notes", data.fundus_notes),
        ("Recommendations", data.recommendations),
    ):
        sheet.heading(title)
        sheet.paragraph(text or "None recorded.")
    _outcome(sheet, record)
    return sheet.finish()

"""Lens options as codes, compound prism, entered Rx, the UK sight-test record.

Orders:

- ``lens_material``, ``coatings`` and ``tint`` held free text ("anti-reflection",
  "AR", "CR-39"); they become the codes of ``ils.domain.lens_options``. Known
  spellings map to their code; anything else becomes ``other`` and its original text
  is kept in the new ``lens_options_original`` JSON column, so nothing typed is lost.
- ``right_/left_prism_vertical`` and ``_prism_vertical_base`` hold a compound prism's
  vertical component; a row whose single prism had base up or down moves there, so
  ``*_prism`` / ``*_prism_base`` hold only the horizontal (in/out) component.
- ``rx_as_entered`` keeps the prescription as entered (new orders are stored in
  minus-cylinder form); old rows leave it empty and are not transposed here: their
  stored form is what the lab was sent.

Examinations gain the sight-test record: ``history``, ``acuity``,
``binocular_vision``, ``ophthalmoscopy`` (JSON blocks), ``outcome``,
``referral_reason``, ``recall_date``, ``optometrist_name``, ``goc_number``.

The mapping below is a copy as of this revision, not an import: a migration must give
the same result whatever the application code later becomes.

Revision ID: 0014_lens_codes_and_sight_test
Revises: 0013_worker_details
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0014_lens_codes_and_sight_test"
down_revision = "0013_worker_details"
branch_labels = None
depends_on = None

OTHER = "other"


def _key(text: str) -> str:
    """Spelling-insensitive key: lower case, letters and digits only."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _coating_codes() -> dict[str, str]:
    spellings = {
        "anti_reflective": (
            "anti_reflective",
            "anti-reflective",
            "anti-reflection",
            "antireflection",
            "anti reflection coating",
            "anti-reflective coating",
            "ar",
            "ar coat",
            "ar coating",
            "mar",
            "multi-coat",
            "multicoat",
        ),
        "hard_coat": ("hard_coat", "hard coat", "hardcoat", "hc", "scratch resistant"),
        "blue_light": (
            "blue_light",
            "blue light",
            "blue-light filter",
            "blue light filter",
            "blue filter",
            "blue cut",
            "blue-light filter coating",
        ),
        "uv400": ("uv400", "uv", "uv protection", "uv 400"),
        "hydrophobic": ("hydrophobic", "easy clean", "top coat", "oleophobic"),
        "anti_fog": ("anti_fog", "anti-fog", "antifog"),
        "mirror": ("mirror", "mirror coating", "mirrored"),
        OTHER: (OTHER,),
    }
    return {_key(s): code for code, names in spellings.items() for s in names}


def _material_codes() -> dict[str, str]:
    spellings = {
        "cr39": ("cr39", "cr-39", "cr 39", "standard plastic", "plastic", "hard resin"),
        "polycarbonate": ("polycarbonate", "poly", "pc"),
        "trivex": ("trivex",),
        "mid_index": ("mid_index", "mid index", "mid-index"),
        "high_index": ("high_index", "high index", "high-index", "hi index", "hi-index"),
        "glass": ("glass", "mineral", "crown glass"),
        OTHER: (OTHER,),
    }
    return {_key(s): code for code, names in spellings.items() for s in names}


def _tint_codes() -> dict[str, str]:
    codes = [
        "grey_20",
        "grey_50",
        "grey_85",
        "brown_20",
        "brown_50",
        "brown_85",
        "green_85",
        "gradient_grey",
        "gradient_brown",
        "photochromic_grey",
        "photochromic_brown",
        "polarised_grey",
        "polarised_brown",
    ]
    table = {_key(code): code for code in codes}
    extra = {
        "gray20": "grey_20",
        "gray50": "grey_50",
        "gray85": "grey_85",
        "sun": "grey_85",
        "photochromic": "photochromic_grey",
        "transitions": "photochromic_grey",
        "polarised": "polarised_grey",
        "polarized": "polarised_grey",
        "polarizedgrey": "polarised_grey",
        "polarizedbrown": "polarised_brown",
        OTHER: OTHER,
    }
    return {**table, **extra}


def _orders() -> sa.TableClause:
    return sa.table(
        "orders",
        sa.column("id", sa.String),
        sa.column("lens_material", sa.String),
        sa.column("coatings", sa.JSON),
        sa.column("tint", sa.String),
        sa.column("lens_options_original", sa.JSON),
        *(
            sa.column(f"{side}_{name}", kind)
            for side in ("right", "left")
            for name, kind in (
                ("prism", sa.Integer()),
                ("prism_base", sa.String),
                ("prism_vertical", sa.Integer()),
                ("prism_vertical_base", sa.String),
            )
        ),
    )


def _convert(row: Any) -> dict[str, Any]:
    """The new values of one order's lens options (only the columns that change)."""
    coatings_map, materials, tints = _coating_codes(), _material_codes(), _tint_codes()
    original: dict[str, Any] = {}
    values: dict[str, Any] = {}
    if row.lens_material:
        code = materials.get(_key(row.lens_material))
        if code is None:
            original["material"] = row.lens_material
            code = OTHER
        if code != row.lens_material:
            values["lens_material"] = code
    if row.tint:
        code = tints.get(_key(row.tint))
        if code is None:
            original["tint"] = row.tint
            code = OTHER
        if code != row.tint:
            values["tint"] = code
    coatings = [str(c) for c in (row.coatings or [])]
    new_coatings: list[str] = []
    unknown = []
    for text in coatings:
        code = coatings_map.get(_key(text))
        if code is None:
            unknown.append(text)
            code = OTHER
        if code not in new_coatings:
            new_coatings.append(code)
    if unknown:
        original["coatings"] = unknown
    if new_coatings != coatings:
        values["coatings"] = new_coatings
    if original:
        values["lens_options_original"] = original
    for side in ("right", "left"):
        base = getattr(row, f"{side}_prism_base")
        if base in ("up", "down"):
            values[f"{side}_prism_vertical"] = getattr(row, f"{side}_prism")
            values[f"{side}_prism_vertical_base"] = base
            values[f"{side}_prism"] = None
            values[f"{side}_prism_base"] = None
    return values


def upgrade() -> None:
    # Nullable columns: a plain ALTER ... ADD on both databases, no table rebuild.
    for side in ("right", "left"):
        op.add_column("orders", sa.Column(f"{side}_prism_vertical", sa.Integer()))
        op.add_column("orders", sa.Column(f"{side}_prism_vertical_base", sa.String(8)))
    op.add_column("orders", sa.Column("rx_as_entered", sa.JSON()))
    op.add_column("orders", sa.Column("lens_options_original", sa.JSON()))
    for name, kind in (
        ("history", sa.JSON()),
        ("acuity", sa.JSON()),
        ("binocular_vision", sa.JSON()),
        ("ophthalmoscopy", sa.JSON()),
        ("outcome", sa.String(16)),
        ("referral_reason", sa.Text()),
        ("recall_date", sa.Date()),
        ("optometrist_name", sa.String(100)),
        ("goc_number", sa.String(16)),
    ):
        op.add_column("examinations", sa.Column(name, kind))

    orders = _orders()
    bind = op.get_bind()
    rows = bind.execute(sa.select(orders)).all()
    for row in rows:
        values = _convert(row)
        if values:
            bind.execute(sa.update(orders).where(orders.c.id == row.id).values(**values))


def downgrade() -> None:
    # Back to free text: the original text where one was kept, else the code; a
    # compound prism keeps only its horizontal component (the old schema had one).
    orders = _orders()
    bind = op.get_bind()
    for row in bind.execute(sa.select(orders)).all():
        values: dict[str, Any] = {}
        original = row.lens_options_original or {}
        if "material" in original:
            values["lens_material"] = original["material"]
        if "tint" in original:
            values["tint"] = original["tint"]
        if "coatings" in original:
            kept = [c for c in (row.coatings or []) if c != OTHER]
            values["coatings"] = kept + list(original["coatings"])
        for side in ("right", "left"):
            vertical = getattr(row, f"{side}_prism_vertical")
            if vertical is not None and getattr(row, f"{side}_prism") is None:
                values[f"{side}_prism"] = vertical
                values[f"{side}_prism_base"] = getattr(row, f"{side}_prism_vertical_base")
        if values:
            bind.execute(sa.update(orders).where(orders.c.id == row.id).values(**values))
    with op.batch_alter_table("examinations") as batch:
        for name in (
            "goc_number",
            "optometrist_name",
            "recall_date",
            "referral_reason",
            "outcome",
            "ophthalmoscopy",
            "binocular_vision",
            "acuity",
            "history",
        ):
            batch.drop_column(name)
    with op.batch_alter_table("orders") as batch:
        for name in (
            "lens_options_original",
            "rx_as_entered",
            "left_prism_vertical_base",
            "left_prism_vertical",
            "right_prism_vertical_base",
            "right_prism_vertical",
        ):
            batch.drop_column(name)

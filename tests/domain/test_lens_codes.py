"""Issue 20's domain rules: cylinder transposition, PD consistency, lens option labels,
and revision 0014 turning free-text lens options into codes on SQLite and PostgreSQL
without losing what was typed.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from alembic import command
from sqlalchemy import text

from ils.db.engine import create_engine, session_factory
from ils.db.migrations import alembic_config, upgrade_database
from ils.domain.lens_options import Coating, LensType, Tint, label
from ils.domain.orders import Order, PrismBase
from ils.domain.rx import SphCyl, mono_pds_agree, to_minus_cylinder
from tests.domain.test_models import new_order, seed

D = Decimal

# (entered sphere, cylinder, axis) -> minus-cylinder form, transposed by hand.
TRANSPOSED = [
    ((D("1.00"), D("0.50"), 90), (D("1.50"), D("-0.50"), 180)),
    ((D("-2.00"), D("1.25"), 180), (D("-0.75"), D("-1.25"), 90)),
    ((D("0.00"), D("2.00"), 45), (D("2.00"), D("-2.00"), 135)),
    ((D("-4.00"), D("0.75"), 135), (D("-3.25"), D("-0.75"), 45)),
    ((D("+3.00"), D("0.25"), 1), (D("3.25"), D("-0.25"), 91)),
]


@pytest.mark.parametrize(("entered", "expected"), TRANSPOSED)
def test_plus_cylinder_is_transposed(
    entered: tuple[Decimal, Decimal, int], expected: tuple[Decimal, Decimal, int]
) -> None:
    assert to_minus_cylinder(*entered) == SphCyl(*expected)


def test_minus_and_zero_cylinders_stay_as_entered() -> None:
    assert to_minus_cylinder(D("-1.00"), D("-0.50"), 30) == (D("-1.00"), D("-0.50"), 30)
    assert to_minus_cylinder(D("2.00"), D("0.00"), None) == (D("2.00"), D("0.00"), None)


@pytest.mark.parametrize(
    ("binocular", "right", "left", "agree"),
    [
        ("64", "32", "32", True),
        ("64", "31.5", "32", True),
        ("64", "31.5", "31.5", True),  # 63 is 1 mm off: the limit
        ("64", "31", "32.5", True),
        ("70", "30", "30", False),
        ("60", "31", "30.5", False),  # 61.5: 1.5 mm off
    ],
)
def test_mono_pds_must_add_up_to_the_binocular_pd(
    binocular: str, right: str, left: str, agree: bool
) -> None:
    assert mono_pds_agree(D(binocular), D(right), D(left)) is agree


def test_every_code_has_a_label_for_documents() -> None:
    for enum in (LensType, Coating, Tint):
        for member in enum:
            assert label(member) and "_" not in label(member)
    assert label("anti_reflective") == "Anti-reflective"
    assert label("other") == "Other (see notes)"


# -- revision 0014 on real databases -------------------------------------------------

FREE_TEXT: list[tuple[str, str | None, list[str], str | None, dict[str, Any]]] = [
    # number, material, coatings, tint, expected after the migration
    (
        "ORD-2025-000001",
        "CR-39",
        ["anti-reflection", "Hard Coat"],
        "Grey 20",
        {
            "lens_material": "cr39",
            "coatings": ["anti_reflective", "hard_coat"],
            "tint": "grey_20",
            "original": None,
        },
    ),
    (
        "ORD-2025-000002",
        "Polycarbonate",
        ["AR", "Anti-Reflective", "anti_reflective"],
        None,
        {
            "lens_material": "polycarbonate",
            "coatings": ["anti_reflective"],
            "tint": None,
            "original": None,
        },
    ),
    (
        "ORD-2025-000003",
        "Super-lite 1.9",
        ["gold flash", "AR"],
        "Sunset fade",
        {
            "lens_material": "other",
            "coatings": ["other", "anti_reflective"],
            "tint": "other",
            "original": {
                "material": "Super-lite 1.9",
                "coatings": ["gold flash"],
                "tint": "Sunset fade",
            },
        },
    ),
]


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest) -> str:
    """A fresh, empty database of each kind."""
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))


async def test_migration_turns_free_text_into_codes_and_keeps_the_rest(url: str) -> None:
    await upgrade_database(url)
    engine = create_engine(url)
    try:
        sessions = session_factory(engine)
        async with sessions() as session, session.begin():
            world = await seed(session)
            for number, *_ in FREE_TEXT:
                session.add(new_order(world, number, pd_binocular=D("63")))
            session.add(
                new_order(
                    world,
                    "ORD-2025-000004",
                    left_prism=D("2.00"),
                    left_prism_base=PrismBase.UP,
                    right_prism=D("1.00"),
                    right_prism_base=PrismBase.IN,
                )
            )
        async with engine.begin() as conn:
            await conn.run_sync(
                lambda c: command.downgrade(alembic_config(c), "0013_worker_details")
            )
            # The rows as the free-text API stored them before this revision.
            for number, material, coatings, tint, _ in FREE_TEXT:
                await conn.execute(
                    text(
                        "UPDATE orders SET lens_material = :material, tint = :tint,"
                        " coatings = :coatings WHERE number = :number"
                    ),
                    {
                        "material": material,
                        "tint": tint,
                        "coatings": str(coatings).replace("'", '"'),
                        "number": number,
                    },
                )
        await upgrade_database(url)
        async with sessions() as session:
            for number, *_, expected in FREE_TEXT:
                order = (
                    await session.execute(
                        text("SELECT id FROM orders WHERE number = :n"), {"n": number}
                    )
                ).scalar_one()
                row = await session.get(Order, order)
                assert row is not None
                assert row.lens_material == expected["lens_material"], number
                assert row.coatings == expected["coatings"], number
                assert row.tint == expected["tint"], number
                assert row.lens_options_original == expected["original"], number
            prism_id = (
                await session.execute(
                    text("SELECT id FROM orders WHERE number = 'ORD-2025-000004'")
                )
            ).scalar_one()
            prism = await session.get(Order, prism_id)
            assert prism is not None
            assert (prism.left_prism, prism.left_prism_base) == (None, None)
            assert (prism.left_prism_vertical, prism.left_prism_vertical_base) == (
                D("2.00"),
                PrismBase.UP,
            )
            assert (prism.right_prism, prism.right_prism_base) == (D("1.00"), PrismBase.IN)
    finally:
        await engine.dispose()

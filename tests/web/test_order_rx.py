"""Issue 20's order rules over HTTP, on SQLite and PostgreSQL: lens options as codes,
compound prism, one cylinder convention, fitting heights and consistent PDs.

Every refused body changes nothing (no order, no job); accepted ones are read back
from the database, with the expected values written out here rather than computed
by the code under test.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from ils.domain.companies import CompanyKind
from ils.domain.numbering import NumberSequence
from ils.domain.orders import Order, PrismBase
from ils.web.state import WebState
from tests.web.api_support import World, all_jobs, body_for, count, errors_of, order_world, place
from tests.web.conftest import DbMaker, Factory, SignedIn

PRACTICE = CompanyKind.PRACTICE
PROGRESSIVE_LENS = {"design": "progressive", "material": "polycarbonate", "index": "1.60"}


@pytest.fixture
async def world(factory: Factory, signed_in: SignedIn) -> World:
    """A practice with a patient and a connected lab (see ``order_world``)."""
    return await order_world(factory, signed_in)


async def stored(db: DbMaker, order_id: str) -> Order:
    async with db() as session:
        order = await session.scalar(select(Order).where(Order.id == order_id))
        assert order is not None
        return order


def _lens(**fields: Any) -> dict[str, Any]:
    return {"lens": {**PROGRESSIVE_LENS, **fields}}


def _left(**fields: Any) -> dict[str, Any]:
    return {"left": {"sphere": -1, "add": 2, **fields}}


REFUSED: list[tuple[str, dict[str, Any], str, str]] = [
    ("free-text coating", _lens(coatings=["anti-reflection"]), "lens.coatings.0", "hard_coat"),
    ("unknown tint", _lens(tint="sunset orange"), "lens.tint", "photochromic_grey"),
    ("unknown lens type", _lens(material="CR-39"), "lens.material", "cr39"),
    (
        "progressive without a fitting height",
        {"seg_height_right": None},
        "seg_height_right",
        "progressive",
    ),
    (
        "bifocal without a segment height",
        {**_lens(design="bifocal"), "seg_height_left": None},
        "seg_height_left",
        "bifocal",
    ),
    (
        "mono PDs 30 + 30 beside a binocular 70",
        {"pd_binocular": 70, "pd_right": 30, "pd_left": 30},
        "pd_left",
        "within 1 mm",
    ),
    (
        "+29.00 / +2.00 is +31.00 in minus cylinder",
        {"right": {"sphere": 29, "cylinder": 2, "axis": 90, "add": 2}},
        "right.sphere",
        "minus-cylinder",
    ),
    (
        "vertical component based in",
        _left(prism=1, prism_base="in", prism_vertical=1, prism_vertical_base="in"),
        "left.prism_vertical_base",
        "up or down",
    ),
    (
        "two vertical components",
        _left(prism=1, prism_base="up", prism_vertical=1, prism_vertical_base="down"),
        "left.prism_vertical_base",
        "in or out",
    ),
    (
        "vertical component without a base",
        _left(prism_vertical=0.5),
        "left.prism_vertical_base",
        "up or down",
    ),
]


@pytest.mark.parametrize(("case", "changes", "field", "says"), REFUSED, ids=[c[0] for c in REFUSED])
async def test_refused_orders_answer_422_naming_the_field(
    world: World,
    state: WebState,
    db: DbMaker,
    case: str,
    changes: dict[str, Any],
    field: str,
    says: str,
) -> None:
    response = await world.client(PRACTICE).post("/api/orders", json=body_for(world, **changes))
    errors = errors_of(response)
    assert field in errors, errors
    assert says in errors[field]
    assert await count(db, Order) == 0
    assert await count(db, NumberSequence) == 0  # no order number taken either
    assert await all_jobs(state) == 0


async def test_lens_options_are_stored_as_codes(world: World, db: DbMaker) -> None:
    order = await place(
        world,
        **_lens(material="trivex", coatings=["anti_reflective", "blue_light"], tint="grey_85"),
    )
    assert order["lens"]["coatings"] == ["anti_reflective", "blue_light"]
    assert order["lens"]["tint"] == "grey_85"
    row = await stored(db, order["id"])
    assert (row.lens_material, row.tint) == ("trivex", "grey_85")
    assert row.coatings == ["anti_reflective", "blue_light"]
    assert row.lens_options_original is None


async def test_compound_prism_is_stored_per_component(world: World, db: DbMaker) -> None:
    order = await place(
        world, **_left(prism=1.5, prism_base="in", prism_vertical=0.75, prism_vertical_base="up")
    )
    assert (order["left"]["prism"], order["left"]["prism_base"]) == ("1.50", "in")
    assert order["left"]["prism_vertical"] == "0.75"
    assert order["left"]["prism_vertical_base"] == "up"
    row = await stored(db, order["id"])
    assert (row.left_prism, row.left_prism_base) == (Decimal("1.50"), PrismBase.IN)
    assert (row.left_prism_vertical, row.left_prism_vertical_base) == (
        Decimal("0.75"),
        PrismBase.UP,
    )


async def test_a_single_vertical_prism_goes_to_the_vertical_component(
    world: World, db: DbMaker
) -> None:
    order = await place(world, **_left(prism=2, prism_base="down"))
    row = await stored(db, order["id"])
    assert row.left_prism is None and row.left_prism_base is None
    assert (row.left_prism_vertical, row.left_prism_vertical_base) == (
        Decimal("2.00"),
        PrismBase.DOWN,
    )


async def test_plus_cylinder_is_stored_transposed_and_shown_as_entered(
    world: World, db: DbMaker
) -> None:
    # +1.00 / +0.50 x 90 is the same lens as +1.50 / -0.50 x 180 (by hand: sphere plus
    # cylinder, cylinder's sign flipped, axis turned 90 degrees).
    order = await place(world, right={"sphere": 1, "cylinder": 0.5, "axis": 90, "add": 2})
    assert order["right"]["sphere"] == "1.50"
    assert order["right"]["cylinder"] == "-0.50"
    assert order["right"]["axis"] == 180
    assert order["right"]["entered"] == {"sphere": "1.00", "cylinder": "0.50", "axis": 90}
    row = await stored(db, order["id"])
    assert (row.right_sphere, row.right_cylinder, row.right_axis) == (
        Decimal("1.50"),
        Decimal("-0.50"),
        180,
    )
    # The left eye, already minus cylinder, is stored as sent.
    assert (row.left_sphere, row.left_cylinder) == (Decimal("-2.00"), Decimal("0.00"))


async def test_consistent_pds_and_single_vision_without_height_are_accepted(
    world: World,
) -> None:
    # 31.5 + 32 = 63.5, within 1 mm of 64.
    order = await place(world, pd_binocular=64, pd_right=31.5, pd_left=32)
    assert order["pd_binocular"] == "64.00"
    single = await place(
        world,
        lens={"design": "single_vision"},
        right={"sphere": -1},
        left={"sphere": -1},
        seg_height_right=None,
        seg_height_left=None,
    )
    assert single["seg_height_right"] is None


async def test_openapi_states_the_pd_rule_and_lists_the_codes(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    create = schemas["OrderCreate"]
    assert "pupillary distance is needed" in create["description"]
    assert "A PD is required" in create["properties"]["pd_binocular"]["description"]
    assert "required with pd_left" in create["properties"]["pd_right"]["description"]
    assert "within 1 mm" in create["properties"]["pd_left"]["description"]
    assert "bifocal" in create["properties"]["seg_height_right"]["description"]
    assert set(schemas["Coating"]["enum"]) == {
        "anti_reflective",
        "hard_coat",
        "blue_light",
        "uv400",
        "hydrophobic",
        "anti_fog",
        "mirror",
        "other",
    }
    assert "photochromic_grey" in schemas["Tint"]["enum"]
    assert "cr39" in schemas["LensType"]["enum"]

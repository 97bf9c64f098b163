"""Reading a value's fields from a record: ORM objects by attribute, plain rows by
position, both to the same result."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import create_engine, text

from ils.domain.records import read_fields


@dataclass
class Frame:
    frame_brand: str
    frame_colour: str


def _row(sql: str) -> object:
    with create_engine("sqlite://").connect() as conn:
        return conn.execute(text(sql)).one()


def test_a_row_and_an_object_give_the_same_fields() -> None:
    row = _row("SELECT 'Lindberg' AS frame_brand, 'grey' AS frame_colour, 3 AS other")
    by_position = read_fields(row, ["brand", "colour"], prefix="frame_", given={})
    by_attribute = read_fields(
        Frame("Lindberg", "grey"), ["brand", "colour"], prefix="frame_", given={}
    )
    assert by_position == by_attribute == {"brand": "Lindberg", "colour": "grey"}


def test_given_fields_are_not_read_from_the_row() -> None:
    row = _row("SELECT 'Lindberg' AS brand")
    assert read_fields(row, ["brand", "colour"], given={"colour": "blue"}) == {
        "brand": "Lindberg",
        "colour": "blue",
    }


def test_a_column_the_row_lacks_is_an_attribute_error_naming_it() -> None:
    row = _row("SELECT 'Lindberg' AS brand")
    with pytest.raises(AttributeError, match="colour"):
        read_fields(row, ["brand", "colour"], given={})

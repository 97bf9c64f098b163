"""Reading a record's columns by the names of the value built from them.

Responses (pydantic models) and documents (dataclasses) often print a record's columns
under their own names. Reading them by the value's field names names each field once, in
the value's class, instead of again in every builder; the builder passes only what is
derived or renamed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def read_fields(
    source: object, names: Iterable[str], *, prefix: str = "", given: Mapping[str, Any]
) -> dict[str, Any]:
    """The fields ``names`` of a value built from ``source``: each from the attribute of
    the same name after ``prefix`` (``frame_`` for an order's frame columns, ``right_``
    for an eye), except those ``given`` (derived values, nested bodies, renamed
    attributes), which are taken as they are. A name the record lacks is an
    ``AttributeError``, not a silent default: a renamed column must show."""
    read = {name: getattr(source, prefix + name) for name in names if name not in given}
    return {**read, **given}

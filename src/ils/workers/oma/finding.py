"""One result of a check on a tracing file (shared by ``checks``, ``rx`` and
``companions``, so none of them has to import another to say what it found)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ils.workers.oma.records import Eye, OmaDocument, OmaFormatError

Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One result of a check: ``error`` (do not use the file as it is), ``warning``
    (look before using it), ``info`` (checked, fine)."""

    severity: Severity
    code: str
    message: str


def side(eye: Eye) -> str:
    """How messages name an eye."""
    return "right" if eye == "R" else "left"


def number(doc: OmaDocument, label: str, eye: Eye) -> float | Finding | None:
    """The file's value, ``None`` without one, or a finding when it is unreadable."""
    try:
        return doc.eye_number(label, eye)
    except OmaFormatError as error:
        return Finding("warning", "value_unreadable", str(error))

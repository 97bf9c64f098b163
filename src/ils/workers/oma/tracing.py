"""Datasets: a header record and its data records; the tracings decoded per eye.

DCS 3.x opens a dataset with a ``...FMT=format;count;E|U;R|L|B;...`` header:
``TRCFMT`` for the frame or lens tracing (the shape), and companions with the same
layout, ``ZFMT`` (bevel heights), ``STHKFMT``/``CTHKFMT``... (thickness maps). The
``R=``, ``A=``, ``Z=`` and ``ZA=`` records after a header belong to it, until the next
header or any other label. Every label ending in ``FMT`` is taken as a header, so a
companion this module does not know still owns its records instead of leaving them
stray. Only ``TRCFMT`` datasets give the shape; the others are kept with their kind
(the header's label) for :mod:`ils.workers.oma.companions`. In ``TRCFMT`` the fifth
field is what was traced (DCS: ``F`` frame, ``P`` pattern, ``D`` demo lens), kept as
written.

What we read, and why:

* Format 1 (ASCII radii in 1/100 mm) only. Other formats pack radii into bytes or
  encoded text; they become :class:`UnsupportedTracing`, kept raw and reported, never
  guessed into numbers.
* ``E`` (equiangular): radius ``i`` of ``N`` lies at ``360 * i / N`` degrees, from 0
  counter-clockwise. ``U``: the ``A=`` records give each radius's angle in 1/100
  degree (strictly increasing, from 0 up to but excluding 360).
* Angles are those of the DCS (and ISO 8429 "TABO") frame: the same for both eyes,
  counter-clockwise as seen from the front, 0 on the right of the viewer. So the right
  lens's 0 is nasal and the left lens's 0 temporal, and a left tracing is the right
  one mirrored: in every two-eye file we have, ``L[i] == R[N/2 - i]`` exactly.
* Side ``B`` (both eyes): the radii are read as the right lens and the left lens is
  their mirror image, as it is in those files.

:func:`tracings` never raises for bad data: it returns what it could decode and the
problems as :class:`OmaFormatError` in ``errors``; the caller decides whether they are
findings or a failed job (:meth:`TracingSet.raise_if_errors`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import Final

from ils.workers.oma.records import Eye, OmaDocument, OmaFormatError, Record

#: More points than any tracer sends (they send 400 to a few thousand).
MAX_POINTS: Final = 10_000
DATA_LABELS: Final = frozenset({"R", "A", "Z", "ZA"})
TRACING_HEADER: Final = "TRCFMT"
#: A dataset header: ``TRCFMT``, ``ZFMT``, ``STHKFMT``... (upper-case, ends in FMT).
HEADER_RE: Final = re.compile(r"[A-Z][A-Z0-9]*FMT")
#: Data records that must not stray outside a dataset: they would belong to no eye.
STRAY_NAMES: Final = {"R": "a radius (R=)", "A": "an angle (A=)"}
SIDES: Final = frozenset({"R", "L", "B"})
INTEGERS_RE: Final = re.compile(r"\d+(?:;\d+)*")
DIGITS_RE: Final = re.compile(r"\d+")
FULL_CIRCLE_HUNDREDTHS: Final = 36_000


@dataclass(frozen=True, slots=True)
class Dataset:
    """A header record (``TRCFMT``, ``STHKFMT``...) and the data records after it."""

    header: Record
    data: tuple[Record, ...]

    @property
    def kind(self) -> str:
        """The header's label: what the dataset holds (``TRCFMT`` is the shape)."""
        return self.header.label

    def values(self, label: str) -> list[str]:
        """The fields of this dataset's ``label`` records, run together in order."""
        return [value for record in self.data if record.label == label for value in record.fields]


@dataclass(frozen=True, slots=True)
class Tracing:
    """One lens's decoded outline: ``count`` radii in mm around the tracing's centre.

    ``angles_deg`` is ``None`` for equiangular radii (see :meth:`angles`). ``side`` is
    the TRCFMT's side (``B`` for a tracing given for both eyes), ``line`` its line.
    """

    eye: Eye
    count: int
    radii_mm: tuple[float, ...]
    kind: str
    angles_deg: tuple[float, ...] | None = None
    side: str = ""
    line: int = field(default=0, compare=False)

    def angles(self) -> tuple[float, ...]:
        """Each radius's angle in degrees, counter-clockwise from the front."""
        if self.angles_deg is not None:
            return self.angles_deg
        return tuple(360.0 * i / self.count for i in range(self.count))

    def angle(self, index: int) -> float:
        """Radius ``index``'s angle in degrees."""
        if self.angles_deg is not None:
            return self.angles_deg[index]
        return 360.0 * index / self.count


@dataclass(frozen=True, slots=True)
class UnsupportedTracing:
    """A tracing in a format we do not decode, kept as it was written."""

    eye: Eye
    format: str
    reason: str
    count: int
    dataset: Dataset
    line: int = field(default=0, compare=False)


Decoded = Tracing | UnsupportedTracing


@dataclass(frozen=True)
class TracingSet:
    """Each eye's tracing (or ``None``), and the problems that kept one from reading."""

    right: Decoded | None
    left: Decoded | None
    errors: tuple[OmaFormatError, ...] = ()

    def eye(self, eye: Eye) -> Decoded | None:
        """The right (``R``) or left (``L``) eye's tracing."""
        return self.right if eye == "R" else self.left

    def raise_if_errors(self) -> None:
        """Raise the first problem, for a caller that treats any as a failed file."""
        if self.errors:
            raise self.errors[0]


def tracings(doc: OmaDocument) -> TracingSet:
    """Every tracing dataset of the document, decoded per eye."""
    found: dict[Eye, Decoded] = {}
    first_line: dict[Eye, int] = {}
    errors: list[OmaFormatError] = []
    grouped, stray = datasets(doc)
    errors.extend(stray)
    for dataset in grouped:
        if dataset.kind != TRACING_HEADER:
            continue
        try:
            decoded = _decode(dataset)
        except OmaFormatError as error:
            errors.append(error)
            decoded = None
        line = dataset.header.line
        eyes = _eyes(dataset.header)
        duplicate = next((eye for eye in eyes if eye in first_line), None)
        if duplicate is not None:
            errors.append(_duplicate(duplicate, line, first_line[duplicate]))
            continue
        for eye in eyes:
            first_line[eye] = line
        for item in decoded or ():
            found[item.eye] = item
    return TracingSet(found.get("R"), found.get("L"), tuple(errors))


def datasets(doc: OmaDocument) -> tuple[list[Dataset], list[OmaFormatError]]:
    """The document's datasets (every kind), and an error per run of stray records.

    A ``R=`` or ``A=`` record before any header, or after another label closed its
    dataset, belongs to no eye: reporting it beats guessing.
    """
    found: list[Dataset] = []
    errors: list[OmaFormatError] = []
    header: Record | None = None
    data: list[Record] = []
    closed_by: Record | None = None  # the record that ended the last dataset
    in_stray_run = False
    for record in doc.records:
        if is_header(record.label):
            if header is not None:
                found.append(Dataset(header, tuple(data)))
            header, data, closed_by, in_stray_run = record, [], None, False
        elif record.label in DATA_LABELS and header is not None:
            data.append(record)
        elif record.label in STRAY_NAMES:
            if not in_stray_run:
                errors.append(_stray(record, closed_by))
            in_stray_run = True
        else:
            if header is not None:
                found.append(Dataset(header, tuple(data)))
                header, data, closed_by = None, [], record
            in_stray_run = False
    if header is not None:
        found.append(Dataset(header, tuple(data)))
    return found, errors


def is_header(label: str) -> bool:
    """Whether ``label`` opens a dataset (``TRCFMT``, ``ZFMT``, ``STHKFMT``...)."""
    return HEADER_RE.fullmatch(label) is not None


def mirror(tracing: Tracing, eye: Eye) -> Tracing:
    """The same outline mirrored left-right (angle ``a`` becomes ``180 - a``).

    An even equiangular tracing stays equiangular (radius ``i`` becomes ``N/2 - i``);
    otherwise the mirrored angles are given explicitly.
    """
    n = tracing.count
    if tracing.angles_deg is None and n % 2 == 0:
        half = n // 2
        radii = tuple(tracing.radii_mm[(half - i) % n] for i in range(n))
        return replace(tracing, eye=eye, radii_mm=radii)
    pairs = sorted(
        ((180.0 - angle) % 360.0, radius)
        for angle, radius in zip(tracing.angles(), tracing.radii_mm, strict=True)
    )
    return replace(
        tracing,
        eye=eye,
        radii_mm=tuple(radius for _, radius in pairs),
        angles_deg=tuple(angle for angle, _ in pairs),
    )


def tracing_name(side: str) -> str:
    """How messages name a dataset: "the right eye's tracing"..."""
    if side == "R":
        return "the right eye's tracing"
    if side == "L":
        return "the left eye's tracing"
    return "the tracing for both eyes"


def _eyes(header: Record) -> tuple[Eye, ...]:
    side = header.fields[3] if len(header.fields) > 3 else ""
    if side == "R":
        return ("R",)
    if side == "L":
        return ("L",)
    return ("R", "L") if side == "B" else ()


def _decode(dataset: Dataset) -> list[Decoded]:
    """The dataset as one entry per eye it is for (two for side ``B``)."""
    header = dataset.header
    fields, line = header.fields, header.line
    if len(fields) < 4:
        raise OmaFormatError(
            "TRCFMT needs at least format;count;E|U;R|L|B (it has fewer fields)", line=line
        )
    fmt, count_text, spacing, side = fields[:4]
    kind = fields[4] if len(fields) > 4 else ""
    if side not in SIDES:
        raise OmaFormatError("TRCFMT names no eye (R, L or B) in its fourth field", line=line)
    name = tracing_name(side)
    count = _count(count_text, name, line)
    if spacing not in ("E", "U"):
        raise OmaFormatError(
            f"{name}: TRCFMT's third field is neither E (equal angles) nor U (given angles)",
            line=line,
        )
    if DIGITS_RE.fullmatch(fmt) is None:
        raise OmaFormatError(f"{name}: the TRCFMT format is not a number", line=line)
    eyes = _eyes(header)
    if int(fmt) != 1:
        reason = f"format {int(fmt)} (encoded), which this system does not read"
        return [
            UnsupportedTracing(eye, str(int(fmt)), reason, count, dataset, line) for eye in eyes
        ]
    radii = _integers(dataset, "R", count, name, "radii")
    angles = None
    if spacing == "U":
        angles = _angles(dataset, count, name)
    right = Tracing(
        eyes[0], count, tuple(r / 100 for r in radii), kind, angles, side=side, line=line
    )
    if side == "B":
        return [right, mirror(right, "L")]
    return [right]


def _count(text: str, name: str, line: int) -> int:
    if DIGITS_RE.fullmatch(text) is None:
        raise OmaFormatError(f"{name}: TRCFMT's point count is not a whole number", line=line)
    count = int(text)
    if not 1 <= count <= MAX_POINTS:
        raise OmaFormatError(
            f"{name}: TRCFMT declares {count} points; a tracing has 1 to {MAX_POINTS}",
            line=line,
        )
    return count


def _integers(dataset: Dataset, label: str, count: int, name: str, what: str) -> list[int]:
    """The dataset's ``label`` fields as non-negative integers, exactly ``count`` of them."""
    values = dataset.values(label)
    # Too many values with a bad one among them: a stray ``;`` is an empty field to
    # report, not one radius too many. Too few: the file is truncated, say so first.
    bad = INTEGERS_RE.fullmatch(";".join(values)) is None
    if bad and len(values) >= count:
        raise _bad_value(dataset, label, name, what)
    if len(values) != count:
        hint = " (the file may be truncated)" if len(values) < count else ""
        raise OmaFormatError(
            f"{name} has {len(values)} {what} but its {dataset.kind} declares {count}{hint}",
            line=dataset.header.line,
        )
    if bad:
        raise _bad_value(dataset, label, name, what)
    return [int(value) for value in values]


def _bad_value(dataset: Dataset, label: str, name: str, what: str) -> OmaFormatError:
    """Where the first value that is not a whole number is, and what is wrong with it."""
    for record, value in _values_with_records(dataset, label):
        if DIGITS_RE.fullmatch(value) is None:
            if not value:
                problem = "an empty field"
            elif value.startswith("-"):
                problem = "a negative value"
            else:
                problem = "a value that is not a whole number of hundredths"
            return OmaFormatError(f"{name}: its {what} include {problem}", line=record.line)
    return OmaFormatError(f"{name}: its {what} are not whole numbers", line=dataset.header.line)


def _values_with_records(dataset: Dataset, label: str) -> Iterator[tuple[Record, str]]:
    for record in dataset.data:
        if record.label == label:
            for value in record.fields:
                yield record, value


def _angles(dataset: Dataset, count: int, name: str) -> tuple[float, ...]:
    """U spacing: the ``A=`` angles in degrees, strictly increasing within [0, 360)."""
    if not dataset.values("A"):
        raise OmaFormatError(
            f"{name} declares its own angles (U) but has no angle (A=) records",
            line=dataset.header.line,
        )
    hundredths = _integers(dataset, "A", count, name, "angles")
    increasing = all(a < b for a, b in pairwise(hundredths))
    if not increasing or hundredths[-1] >= FULL_CIRCLE_HUNDREDTHS:
        raise OmaFormatError(
            f"{name}: its angles must rise from 0 to below 360 degrees, each above the last",
            line=dataset.header.line,
        )
    return tuple(a / 100 for a in hundredths)


def _stray(record: Record, closed_by: Record | None) -> OmaFormatError:
    what = STRAY_NAMES[record.label]
    if closed_by is None:
        return OmaFormatError(
            f"{what} record before any dataset header (TRCFMT...): it belongs to no dataset",
            line=record.line,
        )
    return OmaFormatError(
        f"{what} record apart from its tracing: the {closed_by.label} record at line"
        f" {closed_by.line} ends the tracing before it",
        line=record.line,
    )


def _duplicate(eye: Eye, line: int, first: int) -> OmaFormatError:
    side = "right" if eye == "R" else "left"
    return OmaFormatError(
        f"a second tracing for the {side} eye (the first is at line {first})", line=line
    )

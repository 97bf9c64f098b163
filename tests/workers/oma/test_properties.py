"""Properties: generated documents round-trip, and no input ends in anything but a
clean refusal (:class:`OmaError`) or a result, quickly."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Final

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ils.workers.oma.checks import OrderFrame, OrderRx, check, status
from ils.workers.oma.measure import measure_set, ticket_outline
from ils.workers.oma.records import OmaDocument, OmaError, OmaTooLargeError, Record, parse, write
from ils.workers.oma.tracing import Tracing, tracings
from ils.workers.pdf.shape import clean_outline

DATA: Final = Path(__file__).resolve().parents[2] / "data" / "oma"
REAL: Final = tuple(
    (DATA / name).read_bytes()
    for name in ("R1000_1.oma", "R1000_2.oma", "R360_1.oma", "R360_2.oma", "TRCFMT6.oma")
)
QUICK: Final = settings(deadline=500, max_examples=150)
LINE_ENDS: Final = (b"\r\n", b"\n", b"\r", b"\n\n", b"\r\n\r\n", b"\r\r", b"\n \t\n")
FRAME: Final = OrderFrame(box_a=51, box_b=40, ed=57, dbl=15)
RX: Final = {"R": OrderRx(1.25, -0.5, 90), "L": OrderRx(-0.5, None, None)}

#: Field text: printable ASCII and Latin-1 letters, tabs inside; no ';' (the separator).
FIELD_CHARS: Final = st.sampled_from(
    [chr(c) for c in range(0x20, 0x7F) if chr(c) != ";"] + ["\t", "é", "Ü", "ß", "\xa0", "\x80"]
)
fields = st.text(FIELD_CHARS, max_size=12).map(lambda s: s.strip(" \t"))
labels = st.one_of(
    st.sampled_from(["HBOX", "VBOX", "CIRC", "FED", "DBL", "SPH", "CYL", "AX", "DO", "JOB"]),
    st.sampled_from(["REQ", "FRAM", "DRILLE", "ZTILT", "EYESIZ", "TRCFMT", "R", "A", "Z"]),
    st.from_regex(r"_[A-Z0-9]{1,8}", fullmatch=True),
    st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,12}", fullmatch=True),
)
numbers = st.decimals(min_value=-30, max_value=200, places=2).map(str)
plain_records = st.builds(Record, labels, st.lists(fields, min_size=1, max_size=6).map(tuple))
two_eye_records = st.builds(
    Record,
    st.sampled_from(["HBOX", "VBOX", "SPH", "CYL", "AX", "CIRC"]),
    st.tuples(numbers, numbers),
)


@st.composite
def tracing_records(draw: st.DrawFn) -> tuple[int, ...]:
    """Radii in 1/100 mm, for a dataset."""
    return tuple(draw(st.lists(st.integers(0, 9999), min_size=1, max_size=400)))


@st.composite
def datasets(draw: st.DrawFn, side: str) -> list[Record]:
    radii = draw(tracing_records())
    records = [Record("TRCFMT", ("1", str(len(radii)), "E", side, draw(st.sampled_from("FPD"))))]
    start = 0
    while start < len(radii):
        size = draw(st.integers(1, 40))
        records.append(Record("R", tuple(str(r) for r in radii[start : start + size])))
        start += size
    return records


@st.composite
def documents(draw: st.DrawFn) -> OmaDocument:
    records: list[Record] = draw(
        st.lists(st.one_of(plain_records, two_eye_records), min_size=1, max_size=20)
    )
    for side in draw(st.sampled_from([(), ("R",), ("L",), ("R", "L"), ("B",)])):
        at = draw(st.integers(0, len(records)))
        records[at:at] = draw(datasets(side))
    repeated = draw(st.sampled_from(records))
    records.append(repeated)
    return OmaDocument(tuple(records))


def pipeline(data: bytes) -> None:
    """Everything a job does with a file; only :class:`OmaError` may escape."""
    try:
        doc = parse(data)
    except OmaError:
        return
    found = tracings(doc)
    measured = measure_set(found)
    findings = check(doc, found, measured, FRAME, RX)
    assert status(findings) in ("ok", "warnings", "errors")
    for finding in findings:
        assert finding.message
    shape = ticket_outline(found)
    if shape is not None:
        clean_outline(shape)  # may refuse an absurd shape, must not raise


@QUICK
@given(documents())
def test_generated_documents_round_trip(doc: OmaDocument) -> None:
    written = write(doc)
    assert parse(written) == doc
    assert write(parse(written)) == written


@QUICK
@given(documents(), st.data())
def test_line_ends_and_blank_lines_do_not_matter(doc: OmaDocument, data: st.DataObject) -> None:
    lines = write(doc).split(b"\r\n")[:-1]
    mixed = b""
    for line in lines:
        mixed += line + data.draw(st.sampled_from(LINE_ENDS))
    mixed = data.draw(st.sampled_from([b"", b"\r\n", b"\n\n"])) + mixed
    if data.draw(st.booleans()):
        mixed = mixed.rstrip(b"\r\n \t")  # no line end after the last record
    assert parse(mixed) == doc


@QUICK
@given(st.lists(tracing_records(), min_size=1, max_size=2), st.data())
def test_generated_tracings_decode_exactly(
    radii_sets: list[tuple[int, ...]], data: st.DataObject
) -> None:
    sides = ["R", "L"][: len(radii_sets)]
    records: list[Record] = [Record("REQ", ("FRM",))]
    for side, radii in zip(sides, radii_sets, strict=True):
        records.append(Record("TRCFMT", ("1", str(len(radii)), "E", side, "F")))
        size = data.draw(st.integers(1, 50))
        records += [
            Record("R", tuple(str(r) for r in radii[i : i + size]))
            for i in range(0, len(radii), size)
        ]
    found = tracings(parse(write(OmaDocument(tuple(records)))))
    assert found.errors == ()
    for side, radii in zip(sides, radii_sets, strict=True):
        tracing = found.eye(side)  # type: ignore[arg-type]
        assert isinstance(tracing, Tracing)
        assert tracing.radii_mm == tuple(r / 100 for r in radii)


@QUICK
@given(documents())
def test_generated_documents_go_through_the_whole_job(doc: OmaDocument) -> None:
    pipeline(write(doc))


@QUICK
@given(st.binary(max_size=2000))
def test_arbitrary_bytes(data: bytes) -> None:
    pipeline(data)


#: Pieces of DCS, to reach the structural paths more often than random bytes do.
DCS_ALPHABET: Final = st.sampled_from(
    [
        *("TRCFMT=", "R=", "A=", "Z=", "DO=", "HBOX=", "CIRC=", "SPH=", "CYL=", "AX=", "DBL="),
        *("1", "6", "360", "4", "0", "-", ".", ";", "E", "U", "R", "L", "B", "F", "?", " "),
        *("\r\n", "\n", "\r", "2500", "99999", "\x00", "\x1c", "\x1d", "é", "_V=", "="),
    ]
)


@QUICK
@given(st.lists(DCS_ALPHABET, max_size=120).map("".join))
def test_dcs_like_junk(text: str) -> None:
    pipeline(text.encode("latin-1"))


@QUICK
@given(st.sampled_from(REAL), st.integers(0, 11_000))
def test_truncated_real_files(data: bytes, at: int) -> None:
    pipeline(data[:at])


@QUICK
@given(st.sampled_from(REAL), st.integers(0, 11_000), st.binary(min_size=1, max_size=8))
def test_real_files_with_junk_inside(data: bytes, at: int, junk: bytes) -> None:
    at = min(at, len(data))
    pipeline(data[:at] + junk + data[at:])
    pipeline(data[:at] + junk + data[at + len(junk) :])


@QUICK
@given(st.sampled_from(REAL[:4]), st.sampled_from([b"0", b"1", b"999", b"1001", b"20000", b"-1"]))
def test_wrong_counts(data: bytes, count: bytes) -> None:
    changed = data.replace(b";1000;", b";" + count + b";").replace(b";360;", b";" + count + b";")
    pipeline(changed)
    found = tracings(parse(changed))
    assert found.errors  # every real count is 1000 or 360
    assert found.right is None and found.left is None


def timed(data: bytes) -> float:
    """The best of three runs (the least disturbed by whatever else the machine does)."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        pipeline(data)
        best = min(best, time.perf_counter() - start)
    return best


MIB: Final = 1_048_576
#: A plain mebibyte: a tracing of R records, the work the parser is made for.
PLAIN_MIB: Final = b"TRCFMT=1;10000;E;R;F\r\n" + (b"R=2500\r\n" * MIB)[: MIB - 30]


def relative(data: bytes) -> float:
    """How long ``data`` takes against a plain mebibyte of records, measured side by
    side (a loaded machine slows both, so the ratio holds): hostile shapes must cost
    no more than ordinary input of the same size, where a quadratic path would cost
    hundreds of times more."""
    return timed(data) / timed(PLAIN_MIB)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param((b"R=" + b"2500;" * (MIB // 5))[:MIB], id="one-long-line"),
        pytest.param(b"TRCFMT=1;10000;E;R;F\r\n" + (b"R=2500\r\n" * MIB)[: MIB - 30], id="many-R"),
        pytest.param(b"\r\n" * (MIB // 2), id="blank-lines"),
        pytest.param(b"TRCFMT=1;9999;E;B;F\r\nR=" + b";".join([b"2500"] * 9999), id="big-b"),
        pytest.param((b"_X=" + b"\xe9" * 100 + b"\n") * (MIB // 104), id="latin1"),
        pytest.param(b"A=" + b"x" * (MIB - 2), id="one-huge-field"),
    ],
)
def test_a_hostile_mebibyte_costs_no_more_than_a_plain_one(data: bytes) -> None:
    assert len(data) <= MIB
    assert relative(data) < 3


def test_more_than_the_limit_is_refused_at_once() -> None:
    data = b"R=1;" * (MIB // 4 + 1)
    start = time.perf_counter()
    with pytest.raises(OmaTooLargeError):
        parse(data)
    refused = time.perf_counter() - start
    # Refused before any parsing: a small part of what reading a mebibyte takes.
    assert refused < timed(PLAIN_MIB) / 10


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_mebibyte_of_random_bytes_or_text(seed: int) -> None:
    chance = random.Random(seed)
    assert relative(chance.randbytes(MIB)) < 3
    pieces = ["R=", "A=", "TRCFMT=1;", "2500;", "E;", "R;", "\r\n", "\n", "x", "=", ";"]
    text = "".join(chance.choice(pieces) for _ in range(MIB // 3))[:MIB]
    assert relative(text.encode()) < 3

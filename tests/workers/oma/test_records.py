"""The DCS record layer: real files, line ends, refusals, round trips, lookups.

Uses the real tracing files of ``tests/data/oma`` (MIT licence, LICENSE.txt beside
them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pytest

from ils.errors import PermanentJobError
from ils.workers.oma.records import (
    OmaDocument,
    OmaError,
    OmaFormatError,
    OmaNotDcsError,
    OmaTooLargeError,
    Record,
    looks_like_oma,
    parse,
    write,
)

DATA: Final = Path(__file__).resolve().parents[2] / "data" / "oma"
FILES: Final = ("R1000_1.oma", "R1000_2.oma", "R360_1.oma", "R360_2.oma", "TRCFMT6.oma")
#: A value planted in broken lines: no error message may repeat it.
SECRET: Final = "7.77"


def real(name: str) -> bytes:
    return (DATA / name).read_bytes()


@pytest.mark.parametrize("name", FILES)
def test_real_files_parse_and_round_trip(name: str) -> None:
    doc = parse(real(name))
    again = parse(write(doc))
    assert again == doc
    assert [r.label for r in again.records] == [r.label for r in doc.records]


@pytest.mark.parametrize("name", FILES)
def test_line_ends_do_not_matter(name: str) -> None:
    data = real(name)
    lf = data.replace(b"\r\n", b"\n")
    versions = [
        lf,
        lf.replace(b"\n", b"\r\n"),
        lf.replace(b"\n", b"\r"),
        lf.replace(b"\n", b"\n\n"),
    ]
    docs = [parse(version) for version in versions]
    assert all(doc == docs[0] for doc in docs)
    # Line numbers are physical lines, the same for LF, CR LF and CR.
    assert [r.line for r in docs[0].records] == [r.line for r in docs[2].records]


def test_write_uses_cr_lf() -> None:
    written = write(parse(real("R360_1.oma")))
    assert written.startswith(b"JOB=L419413101\r\nSPH=1.25;-0.50\r\n")
    assert written.endswith(b"\r\n")
    assert b"\n" not in written.replace(b"\r\n", b"")


def test_r1000_records() -> None:
    doc = parse(real("R1000_1.oma"))
    assert doc.records[0] == Record("REQ", ("FRM",))
    assert doc.first("LIB") == Record("LIB", ("framefile", "1559"))
    trcfmt = doc.all("TRCFMT")
    assert [r.fields for r in trcfmt] == [
        ("1", "1000", "E", "R", "P"),
        ("1", "1000", "E", "L", "P"),
    ]
    assert trcfmt[0].line == 12
    radii = doc.all("R")
    assert len(radii) == 200
    assert radii[0].fields[:3] == ("2416", "2420", "2425")
    assert doc.eye_number("CIRC", "R") == doc.eye_number("CIRC", "L") == 150.85
    assert doc.first("NOPE") is None
    assert doc.all("NOPE") == []


def test_two_eye_values_of_trcfmt6() -> None:
    doc = parse(real("TRCFMT6.oma"))
    assert doc.eye_number("HBOX", "R") == doc.eye_number("HBOX", "L") == 53.99
    assert doc.eye_number("VBOX", "L") == 36.0
    assert doc.eye_number("CIRC", "R") == 151.86
    assert doc.eye_number("FED", "L") == 57.18
    assert doc.eye_number("DBL", "L") == 17.0  # one field: both eyes
    assert doc.eye_value("DO", "R") == "B"
    assert doc.eye_number("SPH", "R") is None


def test_eye_values() -> None:
    doc = parse(b"SPH=+1.25;-0.50\nCYL=?;-1.00\nAX=;90\nTPERR=1;2;3\nHBOX=52,5\nFED=nan\n")
    assert doc.eye_value("SPH", "R") == "+1.25"
    assert doc.eye_number("SPH", "R") == 1.25
    assert doc.eye_number("SPH", "L") == -0.5
    assert doc.eye_number("CYL", "R") is None  # "?" is DCS for unknown
    assert doc.eye_number("CYL", "L") == -1.0
    assert doc.eye_value("AX", "R") is None
    assert doc.eye_value("TPERR", "R") is None  # three fields: not a two-eye record
    for label in ("HBOX", "FED"):
        with pytest.raises(OmaFormatError) as caught:
            doc.eye_number(label, "R")
        assert caught.value.line == (5 if label == "HBOX" else 6)
        assert f"{label} is not a number for the right eye" in str(caught.value)
        assert "52" not in str(caught.value) and "nan" not in str(caught.value)


def test_fields_keep_their_positions_and_lose_padding() -> None:
    doc = parse(b"A=1;;3\r\nTRCFMT=  4;512 ;E; R;F\r\nB=\r\nC=x=y\r\n  D =\t5 \r\n")
    assert doc.first("A") == Record("A", ("1", "", "3"))
    assert doc.first("TRCFMT") == Record("TRCFMT", ("4", "512", "E", "R", "F"))
    assert doc.first("B") == Record("B", ("",))
    assert doc.first("C") == Record("C", ("x=y",))
    assert doc.first("D") == Record("D", ("5",))


def test_vendor_unknown_and_repeated_records_are_kept_in_order() -> None:
    data = b"_HOYA=1;2\nDRILLE=R;1\nZZTOP=x\nDRILLE=R;2\n_HOYA=3\nDRILLE=L;3\n"
    doc = parse(data)
    assert [r.label for r in doc.records] == [
        "_HOYA",
        "DRILLE",
        "ZZTOP",
        "DRILLE",
        "_HOYA",
        "DRILLE",
    ]
    assert [r.fields[1] for r in doc.all("DRILLE")] == ["1", "2", "3"]
    assert parse(write(doc)) == doc


def test_latin1_text_round_trips_byte_for_byte() -> None:
    data = "FRAM=Lunettes Étoile\r\n_NOTE=café crème;€\r\n".encode("cp1252")
    doc = parse(data)
    assert doc.first("FRAM") == Record("FRAM", ("Lunettes Étoile",))
    assert write(doc) == data
    utf8 = "_NOTE=Größe\r\n".encode()
    assert write(parse(utf8)) == utf8


def test_framing_bytes_are_dropped() -> None:
    doc = parse(b"\xef\xbb\xbf\x1cREQ=FRM\r\nDBL=15\r\n\x1d\r\n")
    assert doc == parse(b"REQ=FRM\r\nDBL=15\r\n")
    assert parse(b"REQ=FRM\r\nDBL=15\r\n\x1a") == doc


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"ea3\x03\x00\x00\x00\x00\x17vTIT2", "audio file"),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00", "audio file"),
        (b"\x00\x01\x02binary\xff\xfe", "binary data"),
        (b"REQ=FRM\r\nR=\x01\x02\x03\r\n", "binary data"),
        (b"", "empty"),
        (b"\r\n \r\n\t\n", "empty"),
        (b"just some text\nwithout records\n", "first line is not a DCS record"),
        (b"=1;2\n", "first line is not a DCS record"),
        (b"HBOX 1=2\n", "first line is not a DCS record"),
    ],
)
def test_not_dcs_files_are_refused(data: bytes, expected: str) -> None:
    with pytest.raises(OmaNotDcsError) as caught:
        parse(data)
    assert expected in str(caught.value)
    assert "not a tracing file" in str(caught.value)
    assert isinstance(caught.value, PermanentJobError)
    assert not looks_like_oma(data)


def test_binary_error_names_the_line() -> None:
    with pytest.raises(OmaNotDcsError) as caught:
        parse(b"REQ=FRM\r\nDBL=15\r\nR=1\x002\r\n")
    assert caught.value.line == 3
    assert str(caught.value).startswith("line 3: ")


def test_a_later_line_that_is_no_record() -> None:
    data = f"REQ=FRM\nDBL=15\n\n{SECRET};{SECRET}\nHBOX=1\n".encode()
    with pytest.raises(OmaFormatError) as caught:
        parse(data)
    assert caught.value.line == 4
    assert not isinstance(caught.value, OmaNotDcsError)
    assert "line 4: not a DCS record" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_limits() -> None:
    with pytest.raises(OmaTooLargeError) as caught:
        parse(b"A=1\n" * 11, max_bytes=40)
    assert "44 bytes" in str(caught.value)
    assert len(parse(b"A=1\n" * 10, max_bytes=40).records) == 10
    with pytest.raises(OmaTooLargeError):
        parse(b"A=1\n" * 11, max_records=10)
    assert len(parse(b"A=1\n\n\n" * 10, max_records=10).records) == 10
    assert issubclass(OmaTooLargeError, OmaError)


def test_looks_like_oma() -> None:
    for name in FILES:
        assert looks_like_oma(real(name))
    assert looks_like_oma(b"\r\n\r\nA=1")
    assert looks_like_oma(b"\x1cREQ=FRM\r\n")
    assert not looks_like_oma(b"REQ=FRM\r\n" + b"x" * 100 + b"\x00")
    # Past the first KiB it does not look: parse has the last word.
    # Binary late in a file is refused as binary early in it is (parse would fail).
    assert not looks_like_oma(b"REQ=FRM\r\n" + b"A=1\r\n" * 300 + b"\x00")


@pytest.mark.parametrize(
    "record",
    [
        Record("A", ("1;2",)),
        Record("A", ("line\r\nbreak",)),
        Record("A", (" padded",)),
        Record("A", ("padded\t",)),
        Record("A", ()),
        Record("A", ("bell\x07",)),
        Record("BAD LABEL", ("1",)),
        Record("", ("1",)),
        Record("A", ("snow ☃",)),
    ],
)
def test_write_refuses_what_would_not_read_back(record: Record) -> None:
    with pytest.raises(OmaFormatError):
        write(OmaDocument((Record("REQ", ("FRM",)), record)))


def test_write_refuses_an_empty_document() -> None:
    with pytest.raises(OmaFormatError):
        write(OmaDocument(()))


def test_inner_tabs_and_empty_fields_write_back() -> None:
    doc = OmaDocument((Record("_X", ("a\tb", "", "")), Record("R", ("",))))
    assert parse(write(doc)) == doc

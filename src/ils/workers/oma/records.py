"""DCS ("OMA", "VCA") files as records: the model, the parser and the writer.

A Vision Council Data Communication Standard file is a list of ``LABEL=field;field``
records, one a line. This module reads and writes that layer only, exactly: every
record is kept, vendor (``_X``) and unknown labels included, in file order, so a file
can be stored, shown and written back without losing anything. What the records mean
(tracings, measurements, checks) is the business of the sibling modules.

Choices, and why:

* Bytes are decoded as Latin-1. DCS text is ASCII, but vendors put names and notes
  with accents (``0x80``-``0xFF``) in text fields; Latin-1 maps every byte to one
  character, so such a file is kept byte for byte and written back unchanged (a UTF-8
  file reads as Latin-1 text, and is also written back byte for byte). Labels must be
  ASCII.
* Anything else that is not text is refused: NUL or a control byte other than CR, LF
  and TAB means a binary file (``.oma`` is also Sony's OpenMG audio format). A tracing
  packed as raw bytes (format 4 is sent so on device links) is refused with them: it
  can hold line-break bytes, so it cannot be read as records. Format 6, hex text, is
  kept (and reported as unsupported by ``tracing``).
* A UTF-8 byte-order mark, an FS (``0x1C``) that opens a serial DCS message, and the
  GS (``0x1D``) or DOS end-of-file (``0x1A``) byte that may end a captured one are
  framing, not content: they are dropped.
* CR LF, LF and a lone CR all end a line; blank lines are ignored; fields lose their
  surrounding spaces and tabs. So ``parse(write(doc)) == doc`` for every document
  :func:`write` accepts, and a file parses the same whatever its line ends.

Messages name lines and labels, never field values: values may be prescription data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final, Literal

from ils.errors import PermanentJobError

Eye = Literal["R", "L"]

#: DCS labels are upper-case letters and digits, vendor labels start with ``_``; we
#: also take lower case (kept verbatim) rather than refuse a device's odd spelling.
LABEL_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
#: A number as DCS writes it: optional sign, digits, optional decimals.
NUMBER_RE: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
#: Bytes that never occur in a text file: C0 controls other than TAB, LF, CR; and DEL.
BINARY_RE: Final = re.compile(rb"[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f]")
#: What a field written back may not hold: the separator, line breaks, controls.
UNWRITABLE_RE: Final = re.compile(r"[;\x00-\x08\x0a-\x1f\x7f]")
FIELD_PADDING: Final = " \t"
#: "Unknown" in DCS (a request writes ``HBOX=?``); read as no value.
UNKNOWN_VALUES: Final = frozenset({"", "?"})
AUDIO_MAGIC: Final = (b"ea3", b"EA3", b"ID3")
FRAMING_START: Final = (b"\xef\xbb\xbf", b"\x1c")
FRAMING_END: Final = (b"\x1a", b"\x1d")
LOOKS_LIKE_WINDOW: Final = 1024
DEFAULT_MAX_BYTES: Final = 1_048_576
DEFAULT_MAX_RECORDS: Final = 20_000


class OmaError(PermanentJobError):
    """A tracing file that cannot be used. Permanent: reading it again cannot help."""


class OmaFormatError(OmaError):
    """The file breaks the DCS format (or a rule of ours); ``line`` is where, if known."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line


class OmaNotDcsError(OmaFormatError):
    """Not a DCS file at all (binary, audio, text without records, empty)."""


class OmaTooLargeError(OmaError):
    """More bytes or records than a tracing file ever needs."""


@dataclass(frozen=True, slots=True)
class Record:
    """One ``LABEL=f1;f2`` line. ``line`` (where it was read) is not part of equality."""

    label: str
    fields: tuple[str, ...]
    line: int = field(default=0, compare=False, repr=False)


@dataclass(frozen=True)
class OmaDocument:
    """A whole file's records, in file order."""

    records: tuple[Record, ...]

    def first(self, label: str) -> Record | None:
        """The first record with this label (labels are case-sensitive)."""
        for record in self.records:
            if record.label == label:
                return record
        return None

    def all(self, label: str) -> list[Record]:
        """Every record with this label, in file order (``DRILLE``, ``R``...)."""
        return [record for record in self.records if record.label == label]

    def eye_value(self, label: str, eye: Eye) -> str | None:
        """One eye's value of a two-eye record: one field is both eyes, two are R;L.

        ``None`` when the record is missing, holds more than two fields (it is not a
        two-eye record), or the eye's field is empty or ``?`` (unknown in DCS).
        """
        record = self.first(label)
        if record is None or not 1 <= len(record.fields) <= 2:
            return None
        value = record.fields[0 if eye == "R" or len(record.fields) == 1 else 1]
        return None if value in UNKNOWN_VALUES else value

    def eye_number(self, label: str, eye: Eye) -> float | None:
        """:meth:`eye_value` as a number; ``None`` when the file gives no value.

        Raises:
            OmaFormatError: the value is there but is not a number. Not silently
                ``None``: a garbled declared value is worth reporting, and the checks
                turn this into a finding.
        """
        value = self.eye_value(label, eye)
        if value is None:
            return None
        if NUMBER_RE.fullmatch(value) is None:
            record = self.first(label)
            side = "right" if eye == "R" else "left"
            raise OmaFormatError(
                f"{label} is not a number for the {side} eye",
                line=record.line if record is not None else None,
            )
        return float(value)


def looks_like_oma(data: bytes) -> bool:
    """Check for an upload: text throughout, and its first non-blank line is a record.

    The binary test reads the whole file (it is one regex scan, and the upload is
    size-capped); the record test the first KiB. :func:`parse` has the last word.
    """
    # Binary anywhere refuses the file, as :func:`parse` would: a packed tracing late
    # in a file must be refused at upload as one early in it is.
    body = _strip_framing(data)
    if BINARY_RE.search(body) is not None:
        return False
    head = body[:LOOKS_LIKE_WINDOW]
    for raw in head.replace(b"\r", b"\n").split(b"\n"):
        line = raw.decode("latin-1").strip(FIELD_PADDING)
        if line:
            label, equals, _ = line.partition("=")
            return bool(equals) and LABEL_RE.fullmatch(label.strip(FIELD_PADDING)) is not None
    return False


def parse(
    data: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_records: int = DEFAULT_MAX_RECORDS,
) -> OmaDocument:
    """The records of a DCS file.

    Raises:
        OmaTooLargeError: more than ``max_bytes`` bytes or ``max_records`` records.
        OmaNotDcsError: binary content, no records, or a first line that is no record.
        OmaFormatError: a later line that is not a ``LABEL=...`` record.
    """
    if len(data) > max_bytes:
        raise OmaTooLargeError(
            f"the file is {len(data)} bytes; a tracing file may have at most {max_bytes}"
        )
    body = _strip_framing(data)
    _refuse_binary(body)
    text = body.decode("latin-1").replace("\r\n", "\n").replace("\r", "\n")
    records: list[Record] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip(FIELD_PADDING):
            continue
        if len(records) >= max_records:
            raise OmaTooLargeError(
                f"the file has more than {max_records} records, more than any tracing needs"
            )
        records.append(_record(line, number, first=not records))
    if not records:
        raise OmaNotDcsError("not a tracing file: it is empty")
    return OmaDocument(tuple(records))


def write(doc: OmaDocument) -> bytes:
    """The document as a DCS file: ``LABEL=f1;f2`` lines ending in CR LF.

    Raises:
        OmaFormatError: a record that would not read back the same (no records, a bad
            label, no fields, a field with ``;``, a line break, a control character,
            surrounding spaces, or a character outside Latin-1).
    """
    if not doc.records:
        raise OmaFormatError("a document without records cannot be written")
    lines: list[str] = []
    for index, record in enumerate(doc.records, start=1):
        _check_writable(record, index)
        lines.append(f"{record.label}={';'.join(record.fields)}\r\n")
    text = "".join(lines)
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError as error:
        raise OmaFormatError(
            "a value holds a character outside Latin-1, which a DCS file cannot carry"
        ) from error


def _strip_framing(data: bytes) -> bytes:
    """Without a byte-order mark or FS at the start, GS or SUB at the end."""
    for mark in FRAMING_START:
        if data.startswith(mark):
            data = data[len(mark) :]
    end = data.rstrip(b"\r\n")
    for mark in FRAMING_END:
        if end.endswith(mark):
            end = end[: -len(mark)]
            data = end
    return data


def _refuse_binary(data: bytes) -> None:
    found = BINARY_RE.search(data)
    if found is None:
        return
    if data.startswith(AUDIO_MAGIC):
        raise OmaNotDcsError(
            "not a tracing file: it is an audio file (Sony OpenMG audio also uses .oma)"
        )
    raise OmaNotDcsError(
        "not a tracing file: it contains binary data (is it an audio file?)",
        line=_line_of(data, found.start()),
    )


def _line_of(data: bytes, position: int) -> int:
    """The line number of a byte position, counting CR LF, LF and CR as breaks."""
    before = data[:position]
    return before.count(b"\n") + before.count(b"\r") - before.count(b"\r\n") + 1


def _record(line: str, number: int, *, first: bool) -> Record:
    label, equals, rest = line.partition("=")
    label = label.strip(FIELD_PADDING)
    if not equals or LABEL_RE.fullmatch(label) is None:
        if first:
            raise OmaNotDcsError(
                "not a tracing file: its first line is not a DCS record (LABEL=value)",
                line=number,
            )
        raise OmaFormatError(
            "not a DCS record: a record is a label (letters, digits, _), '=' and values",
            line=number,
        )
    if " " in rest or "\t" in rest:
        return Record(label, tuple(value.strip(FIELD_PADDING) for value in rest.split(";")), number)
    return Record(label, tuple(rest.split(";")), number)


def _check_writable(record: Record, index: int) -> None:
    where = f"record {index}"
    if LABEL_RE.fullmatch(record.label) is None:
        raise OmaFormatError(f"{where}: the label is not a DCS label (letters, digits, _)")
    if not record.fields:
        raise OmaFormatError(f"{where} ({record.label}): a record needs at least one field")
    for value in record.fields:
        if UNWRITABLE_RE.search(value) is not None:
            raise OmaFormatError(
                f"{where} ({record.label}): a value holds ';', a line break or a control"
                " character, which a DCS record cannot carry"
            )
        if value != value.strip(FIELD_PADDING):
            raise OmaFormatError(
                f"{where} ({record.label}): a value starts or ends with a space, which"
                " reading the file back would drop"
            )

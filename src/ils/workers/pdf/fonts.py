"""The documents' typeface: one that prints the prism sign (Δ) and the degree sign (°).

reportlab's standard fonts (Helvetica) are WinAnsi-encoded: they have ``°`` but no
``Δ``, so a prescription's prism would print as a black box. Documents therefore draw
with DejaVu Sans, a TrueType font Debian installs (``fonts-dejavu-core``) and reportlab
embeds as a subset. Every document uses the font names :data:`REGULAR` and :data:`BOLD`;
:func:`ensure_fonts` binds them once per process:

- to DejaVu Sans when both of its files are found (:data:`DEJAVU_DIRS`);
- otherwise, the fallback, to Helvetica under the same names, and
  :func:`has_prism_sign` answers ``False`` so :mod:`ils.workers.pdf.fmt` spells the
  prism out (``1.50 prism dioptres base in``) rather than print a glyph the font lacks.

The binding lives in reportlab's own font registry (the process-wide place reportlab
looks fonts up by name), so this module keeps no state of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFError, TTFont

#: The names documents draw with, whichever font backs them.
REGULAR = "ILS-Sans"
BOLD = "ILS-Sans-Bold"

#: Where Debian and Ubuntu (``fonts-dejavu-core``) and Fedora put DejaVu Sans.
DEJAVU_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu-sans-fonts"),
    Path("/usr/share/fonts/TTF"),
)
_DEJAVU_FILES = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf")


def _find_dejavu(dirs: Sequence[Path]) -> tuple[Path, Path] | None:
    for folder in dirs:
        regular, bold = (folder / name for name in _DEJAVU_FILES)
        if regular.is_file() and bold.is_file():
            return regular, bold
    return None


def ensure_fonts(dirs: Sequence[Path] = DEJAVU_DIRS) -> None:
    """Bind :data:`REGULAR` and :data:`BOLD` if not yet bound in this process.

    ``dirs`` are searched for DejaVu Sans; with none found (or an unreadable file)
    the names fall back to Helvetica. The first call decides: reportlab cannot
    unregister a font, and every document of a process should look alike.
    """
    if REGULAR in pdfmetrics.getRegisteredFontNames():
        return
    found = _find_dejavu(dirs)
    if found is not None:
        try:
            regular = TTFont(REGULAR, str(found[0]))
            bold = TTFont(BOLD, str(found[1]))
        except (TTFError, OSError):  # a damaged or unreadable font file: fall back
            found = None
        else:
            pdfmetrics.registerFont(regular)
            pdfmetrics.registerFont(bold)
    if found is None:
        pdfmetrics.registerFont(pdfmetrics.Font(REGULAR, "Helvetica", "WinAnsiEncoding"))
        pdfmetrics.registerFont(pdfmetrics.Font(BOLD, "Helvetica-Bold", "WinAnsiEncoding"))
    pdfmetrics.registerFontFamily(REGULAR, normal=REGULAR, bold=BOLD)


def has_prism_sign() -> bool:
    """Whether the document font prints ``Δ`` (DejaVu: yes; the Helvetica fallback: no)."""
    ensure_fonts()
    font = pdfmetrics.getFont(REGULAR)
    return isinstance(font, TTFont) and ord("Δ") in font.face.charToGlyph

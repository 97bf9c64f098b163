"""The page every document shares: letterhead, title, footer with page numbers, flow.

:class:`Sheet` wraps a reportlab canvas with a cursor running down the page. Blocks
ask for the height they need (:meth:`Sheet.room`) and a new page starts, with the
header drawn again, when it is not there, so no document has to know where pages
break. Tables repeat their column headings after a break.

"Page 2 of 3" needs the page count before it is known: each footer draws a form
XObject named for the total, and the form is defined once at the end, when the
count is. reportlab resolves the forward reference when it writes the file.

Output is ``invariant`` (no creation time or random file id inside), so the same
values give the same bytes and the same checksum.

Text is set in DejaVu Sans, embedded as a subset (``fonts``: Helvetica, which has no
prism sign, is the fallback), so a document is some 40 KiB rather than a few. Labels
and values wrap rather than being cut: a wider font must never drop a coating.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, LETTER
from reportlab.lib.units import mm
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

from ils.workers.pdf import fonts
from ils.workers.pdf.data import DocumentMeta, Letterhead

#: DejaVu Sans (with the prism sign) or, without it, Helvetica: see ``fonts``.
FONT = fonts.REGULAR
BOLD = fonts.BOLD
MARGIN = 16 * mm
HEADER_HEIGHT = 34 * mm
FOOTER_HEIGHT = 12 * mm
DEFAULT_COLOR = colors.HexColor("#1f4e79")
GREY = colors.HexColor("#5f6b76")
RULE = colors.HexColor("#c9d1d9")
ZEBRA = colors.HexColor("#f3f6f9")
CONFIDENTIAL_RED = colors.HexColor("#b00020")
_TOTAL_PAGES_FORM = "ils_total_pages"

Align = Literal["left", "right", "center"]


def page_size(paper: str) -> tuple[float, float]:
    """The page of a company's ``paper_size`` (A4 unless it says Letter)."""
    return LETTER if paper.strip().lower() == "letter" else A4


def brand_color(value: str | None) -> colors.Color:
    """The company's colour, or ILS blue for a missing or malformed one."""
    if value and len(value) == 7 and value.startswith("#"):
        try:
            int(value[1:], 16)
        except ValueError:
            return DEFAULT_COLOR
        return colors.HexColor(value)
    return DEFAULT_COLOR


@dataclass(frozen=True, slots=True)
class Column:
    """A table column: heading, share of the width, alignment."""

    heading: str
    width: float
    align: Align = "left"


class Sheet:
    """One document being drawn: pages, cursor and the shared furniture."""

    def __init__(
        self,
        letterhead: Letterhead,
        title: str,
        reference: str,
        meta: DocumentMeta,
        *,
        confidential: str | None = None,
    ) -> None:
        """Start page 1.

        Args:
            letterhead: The issuing company (header, colour, paper size).
            title: ``Invoice``, ``Lab work ticket``...; printed large on each page.
            reference: The document's number, printed beside the title.
            meta: Version and generation time for the footer.
            confidential: A marking printed in red in the header and footer of every
                page (the examination form), or ``None``.
        """
        self.letterhead = letterhead
        self.title = title
        self.reference = reference
        self.meta = meta
        self.confidential = confidential
        fonts.ensure_fonts()
        self.color = brand_color(letterhead.primary_color)
        self.width, self.height = page_size(letterhead.paper_size)
        self.left = MARGIN
        self.right = self.width - MARGIN
        self.bottom = MARGIN + FOOTER_HEIGHT
        self._buffer = io.BytesIO()
        # The initial font too, or every page would still reference Helvetica.
        self.canvas = Canvas(
            self._buffer,
            pagesize=(self.width, self.height),
            invariant=True,
            initialFontName=FONT,  # type: ignore[arg-type]  # types-reportlab says float
        )
        # The title only: a patient name must never end up in file metadata.
        self.canvas.setTitle(f"{title} {reference}")
        self.canvas.setAuthor(letterhead.name)
        self.canvas.setCreator("ILS")
        self.page = 0
        self.y = 0.0
        self._start_page()

    @property
    def content_width(self) -> float:
        """Width between the margins."""
        return self.right - self.left

    # -- pages -----------------------------------------------------------------------

    def _start_page(self) -> None:
        self.page += 1
        self._draw_header()
        self.y = self.height - MARGIN - HEADER_HEIGHT

    def new_page(self) -> None:
        """Finish this page (footer) and start the next (header)."""
        self._draw_footer()
        self.canvas.showPage()
        self._start_page()

    def room(self, height: float) -> None:
        """Make sure ``height`` points are left on this page; break to a new one if not."""
        if self.y - height < self.bottom:
            self.new_page()

    def space(self, height: float = 4 * mm) -> None:
        """Vertical gap (never carried over to a new page)."""
        self.y = max(self.y - height, self.bottom)

    def finish(self) -> bytes:
        """Close the last page, define the page count, and return the PDF bytes."""
        self._draw_footer()
        self.canvas.showPage()
        c = self.canvas
        c.beginForm(_TOTAL_PAGES_FORM)
        c.setFont(FONT, 7.5)
        c.setFillColor(GREY)
        c.drawString(0, 0, str(self.page))
        c.endForm()
        c.save()
        return self._buffer.getvalue()

    def _draw_header(self) -> None:
        c = self.canvas
        lh = self.letterhead
        top = self.height - MARGIN
        c.setFillColor(self.color)
        c.rect(self.left, top - 2.2 * mm, self.content_width, 2.2 * mm, stroke=0, fill=1)
        mark = (lh.logo_text or lh.name).upper()
        c.setFont(BOLD, 17)
        c.drawString(self.left, top - 10 * mm, mark[:40])
        if lh.logo_text:
            c.setFont(FONT, 8.5)
            c.setFillColor(GREY)
            c.drawString(self.left, top - 14.5 * mm, lh.name[:80])
        details = [lh.name, *lh.address_lines]
        contact = " · ".join(v for v in (lh.phone, lh.email) if v)
        if contact:
            details.append(contact)
        if lh.vat_number:
            details.append(f"VAT {lh.vat_number}")
        c.setFont(FONT, 7.5)
        c.setFillColor(GREY)
        y = top - 6 * mm
        for line in details[:6]:
            c.drawRightString(self.right, y, line[:90])
            y -= 3.3 * mm
        c.setFillColor(colors.black)
        c.setFont(BOLD, 14)
        c.drawString(self.left, top - 27 * mm, self.title)
        c.setFont(BOLD, 11)
        c.drawRightString(self.right, top - 27 * mm, self.reference)
        if self.confidential:
            c.setFillColor(CONFIDENTIAL_RED)
            c.setFont(BOLD, 9)
            title_width = c.stringWidth(self.title, BOLD, 14)
            c.drawString(self.left + title_width + 6 * mm, top - 27 * mm, self.confidential)
        c.setStrokeColor(self.color)
        c.setLineWidth(0.8)
        c.line(self.left, top - 30 * mm, self.right, top - 30 * mm)
        c.setFillColor(colors.black)

    def _draw_footer(self) -> None:
        c = self.canvas
        y = MARGIN
        c.setStrokeColor(RULE)
        c.setLineWidth(0.5)
        c.line(self.left, y + 5 * mm, self.right, y + 5 * mm)
        c.setFont(FONT, 7.5)
        c.setFillColor(GREY)
        stamp = f"{self.reference} · version {self.meta.version}"
        if self.meta.generated_at:
            stamp += f" · generated {self.meta.generated_at}"
        c.drawString(self.left, y, stamp)
        label = f"Page {self.page} of "
        total_width = c.stringWidth("999", FONT, 7.5)
        label_x = self.right - total_width - c.stringWidth(label, FONT, 7.5)
        c.drawString(label_x, y, label)
        c.saveState()
        c.translate(self.right - total_width, y)
        c.doForm(_TOTAL_PAGES_FORM)
        c.restoreState()
        if self.confidential:
            c.setFillColor(CONFIDENTIAL_RED)
            c.setFont(BOLD, 7.5)
            c.drawCentredString(self.width / 2, y - 4 * mm, self.confidential)
        c.setFillColor(colors.black)

    # -- blocks ----------------------------------------------------------------------

    def heading(self, text: str) -> None:
        """A section heading in the company colour (kept with some room below it)."""
        self.room(14 * mm)
        self.space(2 * mm)
        c = self.canvas
        c.setFillColor(self.color)
        c.setFont(BOLD, 10.5)
        c.drawString(self.left, self.y - 4 * mm, text)
        c.setFillColor(colors.black)
        self.y -= 6.5 * mm

    def fields(
        self,
        pairs: Sequence[tuple[str, str]],
        columns: int = 2,
        label_share: float = 0.38,
        *,
        width: float | None = None,
    ) -> None:
        """Label / value pairs in ``columns`` columns, row by row, over ``width``
        points from the left margin (the full width by default).

        A value too long for its cell wraps onto more lines (the row grows) rather
        than being cut: a coating left off a ticket is a lens made wrong."""
        col_width = (width or self.content_width) / columns
        line_height = 5.2 * mm
        wrap_leading = 9 * 1.25
        max_width = col_width * (1 - label_share) - 2 * mm
        c = self.canvas
        for start in range(0, len(pairs), columns):
            row = pairs[start : start + columns]
            values = [simpleSplit(value, BOLD, 9, max_width) or [""] for _, value in row]
            extra = max(len(lines) for lines in values) - 1
            row_height = line_height + extra * wrap_leading
            self.room(row_height)
            for offset, ((label, _), lines) in enumerate(zip(row, values, strict=True)):
                x = self.left + offset * col_width
                c.setFont(FONT, 8)
                c.setFillColor(GREY)
                c.drawString(x, self.y - 3.8 * mm, label)
                c.setFont(BOLD, 9)
                c.setFillColor(colors.black)
                value_x = x + col_width * label_share
                for index, line in enumerate(lines):
                    text = _fit(line, BOLD, 9, max_width)  # one unbreakable word only
                    c.drawString(value_x, self.y - 3.8 * mm - index * wrap_leading, text)
            self.y -= row_height

    def paragraph(self, text: str, size: float = 9, font: str = FONT) -> None:
        """Wrapped text across the page width; breaks across pages line by line."""
        leading = size * 1.35
        c = self.canvas
        for raw in text.splitlines() or [""]:
            for line in simpleSplit(raw, font, size, self.content_width) or [""]:
                self.room(leading)
                c.setFont(font, size)
                c.drawString(self.left, self.y - size, line)
                self.y -= leading

    def table(
        self,
        columns: Sequence[Column],
        rows: Sequence[Sequence[str]],
        *,
        size: float = 8.5,
        bold_rows: frozenset[int] = frozenset(),
    ) -> None:
        """A table with wrapped cells; headings repeat on every page it spans."""
        total = sum(col.width for col in columns)
        widths = [self.content_width * col.width / total for col in columns]
        pad = 1.6 * mm
        leading = size * 1.3

        def wrap(texts: Sequence[str], font: str) -> list[list[str]]:
            return [
                simpleSplit(text, font, size, width - 2 * pad) or [""]
                for text, width in zip(texts, widths, strict=True)
            ]

        def height_of(cells: list[list[str]]) -> float:
            return max(len(lines) for lines in cells) * leading + 2 * pad

        def draw(
            cells: list[list[str]], font: str, band: colors.Color | None, ink: colors.Color
        ) -> None:
            """One row of wrapped cells (the headings are a row too) on an optional band."""
            height = height_of(cells)
            c = self.canvas
            if band is not None:
                c.setFillColor(band)
                c.rect(self.left, self.y - height, self.content_width, height, stroke=0, fill=1)
            c.setFillColor(ink)
            c.setFont(font, size)
            x = self.left
            for lines, col, width in zip(cells, columns, widths, strict=True):
                line_y = self.y - pad - size
                for line in lines:
                    _draw_aligned(c, line, x, width, line_y, col.align, pad)
                    line_y -= leading
                x += width
            c.setFillColor(colors.black)
            self.y -= height

        # Headings wrap like cells: a long one ("Unit price (net, excl. VAT)") must not
        # run into its neighbour.
        heads = wrap([col.heading for col in columns], BOLD)

        def draw_headings() -> None:
            self.room(height_of(heads) + leading + 2 * pad)
            draw(heads, BOLD, self.color, colors.white)

        draw_headings()
        for index, row in enumerate(rows):
            font = BOLD if index in bold_rows else FONT
            cells = wrap(row, font)
            if self.y - height_of(cells) < self.bottom:
                self.new_page()
                draw_headings()
            draw(cells, font, ZEBRA if index % 2 else None, colors.black)
        self.canvas.setStrokeColor(RULE)
        self.canvas.setLineWidth(0.5)
        self.canvas.line(self.left, self.y, self.right, self.y)

    def checklist(self, items: Sequence[tuple[str, str]], columns: int = 2) -> None:
        """Boxes to tick, with lines for initials and date: ``(station, note)`` pairs,
        in ``columns`` columns read row by row (stations in order, left to right)."""
        c = self.canvas
        row_height = 10 * mm
        box = 4 * mm
        col_width = self.content_width / columns
        for start in range(0, len(items), columns):
            self.room(row_height)
            top = self.y
            for offset, (station, note) in enumerate(items[start : start + columns]):
                x = self.left + offset * col_width
                base = top - 5 * mm
                c.setStrokeColor(colors.black)
                c.setLineWidth(0.7)
                c.rect(x, base, box, box, stroke=1, fill=0)
                c.setFont(BOLD, 8.5)
                c.setFillColor(colors.black)
                c.drawString(x + box + 2 * mm, base + 1 * mm, _fit(station, BOLD, 8.5, 44 * mm))
                if note:
                    c.setFont(FONT, 7)
                    c.setFillColor(GREY)
                    c.drawString(x + box + 2 * mm, base - 3 * mm, _fit(note, FONT, 7, 44 * mm))
                c.setStrokeColor(RULE)
                c.setLineWidth(0.5)
                sign_x = x + col_width - 36 * mm
                for label, dy in (("initials", 0.0), ("date", 4.2 * mm)):
                    c.setFont(FONT, 6)
                    c.setFillColor(GREY)
                    c.drawString(sign_x, base + 1 * mm - dy, label)
                    c.line(
                        sign_x + 9 * mm,
                        base + 0.6 * mm - dy,
                        sign_x + 33 * mm,
                        base + 0.6 * mm - dy,
                    )
            c.setFillColor(colors.black)
            self.y = top - row_height


def _fit(text: str, font: str, size: float, width: float) -> str:
    """``text`` cut with an ellipsis to fit ``width`` (single-line fields)."""
    if stringWidth(text, font, size) <= width:
        return text
    while text and stringWidth(text + "...", font, size) > width:
        text = text[:-1]
    return text + "..."


def _draw_aligned(
    c: Canvas, text: str, x: float, width: float, y: float, align: Align, pad: float
) -> None:
    if align == "right":
        c.drawRightString(x + width - pad, y, text)
    elif align == "center":
        c.drawCentredString(x + width / 2, y, text)
    else:
        c.drawString(x + pad, y, text)

"""E-mail bodies from Jinja2 templates: an HTML part and a plain-text part per message.

Each e-mail type has ``<name>.html`` and ``<name>.txt`` under ``templates/``, both
extending a layout that carries the sending company's name and colour. HTML
templates are autoescaped, so every value from the database or a payload (a company
name, a connection message, an AI briefing, a notification's text) is inert markup;
plain-text templates are not escaped, since nothing interprets them. Undefined
variables raise instead of rendering empty, so a template bug fails the job (a
retryable error) rather than mailing a half-empty order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

TEMPLATE_DIR: Final = Path(__file__).parent / "templates"
_BLANK_LINES: Final = re.compile(r"\n\s*\n")


@dataclass(frozen=True, slots=True)
class Body:
    """The two parts of one message."""

    text: str
    html: str


def dioptres(value: Decimal | None) -> str:
    """``+1.25``, ``-0.50``, ``0.00``: the sign always shown, as prescriptions are
    written (a missing sign is how a minus lens gets ground as a plus one)."""
    if value is None:
        return ""
    return "0.00" if value == 0 else f"{value:+.2f}"


def millimetres(value: Decimal | None) -> str:
    """A length in mm with one decimal (``63.5``), empty when not given."""
    return "" if value is None else f"{value:.1f}"


def money(cents: int | None) -> str:
    """Integer minor units as ``1,234.56`` (empty when unknown)."""
    if cents is None:
        return ""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{whole:,}.{part:02d}"


def label(value: object) -> str:
    """An enum value or code as words: ``in_production`` → ``In production``."""
    text = str(getattr(value, "value", value)).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def day(value: date | datetime | None) -> str:
    """``28 Nov 2026``: unambiguous in every country, unlike 11/28 or 28/11."""
    return "" if value is None else f"{value.day} {value:%b %Y}"


def paragraphs(text: str | None) -> Markup:
    """User text as HTML paragraphs: escaped first, then blank lines become paragraph
    breaks and single line breaks ``<br>``."""
    if not text:
        return Markup("")
    blocks = _BLANK_LINES.split(text.replace("\r\n", "\n").strip("\n"))
    line_break = Markup("<br>\n")
    return Markup("\n").join(
        Markup("<p>{}</p>").format(line_break.join(escape(line) for line in block.split("\n")))
        for block in blocks
        if block.strip()
    )


def build_environment(template_dir: Path = TEMPLATE_DIR) -> Environment:
    """The Jinja2 environment: autoescape for ``.html``, strict undefined, our filters."""
    env = Environment(
        loader=FileSystemLoader(template_dir),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    env.filters.update(money=money, label=label, day=day, paragraphs=paragraphs)
    return env


class Renderer:
    """Renders the text and HTML parts of an e-mail type from one context."""

    def __init__(self, environment: Environment | None = None) -> None:
        self.environment = environment or build_environment()

    def render(self, template: str, context: dict[str, Any]) -> Body:
        """Both parts of ``template`` (``order_confirmation`` → ``.txt`` and ``.html``)."""
        text = self.environment.get_template(f"{template}.txt").render(context)
        html = self.environment.get_template(f"{template}.html").render(context)
        return Body(text=text, html=html)

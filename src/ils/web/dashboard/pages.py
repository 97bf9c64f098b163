"""Rendering the dashboard: templates, static files, security headers, refusals as pages.

Why it is built this way:

* Templates autoescape, and every page carries a Content-Security-Policy that allows
  only this app's own script and stylesheet, so an injected ``<script>`` stays inert
  even if escaping were ever missed. Hence no inline script or style: the pages
  hand data to ``dashboard.js`` in ``data-`` attributes.
* The static files (the script, the forms' script and the stylesheet) are read from
  the package once per app and served with an ETag: no CDN, no ``StaticFiles`` mount
  (a router cannot carry one into the app).
* :func:`page_route` makes the dashboard's routes answer refusals as pages: no session
  redirects (303) to the sign-in page, a role that may not gets a 403 page, another
  company's job the same 404 page as a missing one.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any, Final
from urllib.parse import quote, urlencode

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape
from starlette.exceptions import HTTPException as StarletteHTTPException

from ils.domain.companies import MANAGER_ROLES, zone_named
from ils.errors import ConfigurationError, ILSError
from ils.web.errors import status_for, validation_details
from ils.web.security import SessionAuth

PACKAGE: Final = "ils.web.dashboard"
SIGN_IN_PATH: Final = "/admin/sign-in"
HOME_PATH: Final = "/admin/queues"
STATIC_TYPES: Final = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "forms.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    # issue 19, latency: the charts (overview and queue pages only).
    "charts.js": "text/javascript; charset=utf-8",
    "charts.css": "text/css; charset=utf-8",
}
#: Only this app's own files run or style the pages; the script talks to this origin
#: only; no page may frame the dashboard (clickjacking on its Remove buttons).
CONTENT_SECURITY_POLICY: Final = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
ERROR_TITLES: Final = {
    400: "Bad request",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict",
    503: "Service unavailable",
}
NOT_FOUND_TEXT: Final = "This page or job does not exist, or it is not yours to see."
FORBIDDEN_TEXT: Final = (
    "Your account may not use the queue dashboard: it needs the role platform_admin, "
    "admin or company_admin."
)


# -- formatting (Jinja filters) -----------------------------------------------------------


def by_attempt(lines: list[str]) -> list[tuple[int | None, str]]:
    """A job's log lines as ``(attempt, text)``: the runner prefixes each line with
    ``[attempt N]``; lines without it (written by other producers) have ``None``."""
    result: list[tuple[int | None, str]] = []
    for line in lines:
        head, _, rest = line.partition("] ")
        number = head.removeprefix("[attempt ")
        if head.startswith("[attempt ") and number.isdigit() and rest:
            result.append((int(number), rest))
        else:
            result.append((None, line))
    return result


def when(value: datetime | None) -> str:
    """``2026-11-28 14:03:05 UTC``: one zone for everyone reading the same page, so
    two admins comparing notes by phone see the same times."""
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def moment(value: datetime | None) -> Markup:
    """A time as ``<time>``: the page says it in UTC, and ``dashboard.js`` turns the
    text into "3 min ago" and the title into the viewer's own zone (the UTC time kept
    beside it). The server cannot know the viewer's zone, and a relative time rendered
    here would be wrong by the time the page is read; without the script the absolute
    UTC time still reads correctly."""
    if value is None:
        return Markup("—")
    text = when(value)
    stamp = value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return Markup('<time datetime="{0}" title="{1}" data-relative>{1}</time>').format(
        escape(stamp), escape(text)
    )


def traces_by_attempt(traces: list[str], attempts_made: int) -> list[tuple[str, str]]:
    """Each stack trace with the attempt it came from, oldest first.

    Stores append one trace per failed attempt, keep the newest ones when a job limits
    them (``stackTraceLimit``), and keep them when the job is retried by hand while its
    attempt counter starts again; so when there are no more traces than attempts the
    last trace is the last attempt's ("Attempt 3"), and otherwise they are numbered in
    the order they failed over every run of the job ("Failure 2 of 4"), since attempt
    numbers then repeat.
    """
    if not traces:
        return []
    if len(traces) <= attempts_made:
        first = attempts_made - len(traces) + 1
        return [(f"Attempt {first + n}", trace) for n, trace in enumerate(traces)]
    return [(f"Failure {n + 1} of {len(traces)}", trace) for n, trace in enumerate(traces)]


def zoned(value: datetime | None, zone: str) -> str:
    """``2026-11-28 08:00 CET``: a schedule's run in its own zone, the time its admin
    planned it at (the page shows the UTC time beside it, for comparing schedules of
    different zones)."""
    if value is None:
        return "—"
    return value.astimezone(zone_named(zone)).strftime("%Y-%m-%d %H:%M %Z")


def every(seconds: int | None) -> str:
    """An interval schedule's cadence as it was likely typed: ``every 15 min``,
    ``every 2 h``, ``every 90 s`` (the API counts seconds, the form minutes)."""
    if seconds is None:
        return "—"
    if seconds % 3600 == 0:
        return f"every {seconds // 3600} h"
    if seconds % 60 == 0:
        return f"every {seconds // 60} min"
    return f"every {seconds} s"


def age(seconds: float | None) -> str:
    """A waiting time a person reads at a glance: ``45 s``, ``12 min``, ``3 h 5 min``."""
    if seconds is None:
        return "—"
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def pretty(value: Any) -> str:
    """JSON laid out for reading; anything not JSON-able as its ``str``."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def compact(value: Any) -> str:
    """An audit entry's detail on one line (``—`` when it has none)."""
    if not value:
        return "—"
    return json.dumps(
        value, ensure_ascii=False, sort_keys=True, separators=(", ", ": "), default=str
    )


def shown(value: Any, kind: str = "text") -> str:
    """A live figure as the page first shows it; ``dashboard.js`` (``FORMATS``) formats
    the refreshed values the same way, so a number does not change look on refresh."""
    if value is None:
        return "—"
    if kind == "yesno":
        return "yes" if value else "no"
    if kind == "ms":
        return f"{float(value):.2f} ms"
    if kind == "age":
        return age(float(value))
    if kind == "bytes":
        size = int(value)
        return "no limit" if size == 0 else f"{size / 1_048_576:.1f} MiB"
    if kind == "count" and isinstance(value, list | dict):
        return str(len(value))
    return str(value)


def tone(value: Any, kind: str) -> str:
    """The colour class of a health figure: ``ok``, ``warn``, ``bad`` or none."""
    if value is None:
        return ""
    if kind == "status":
        return {"ok": "ok", "degraded": "warn"}.get(str(value), "bad")
    if kind == "yesno":
        return "ok" if value else "bad"
    return ""


def label(value: object) -> str:
    """``company_admin`` → ``company admin``: enum values as words."""
    return str(getattr(value, "value", value)).replace("_", " ")


def part(value: object) -> str:
    """A path segment: job ids are opaque text, so ``/`` or ``?`` in one must not
    change which page a link opens."""
    return quote(str(value), safe="")


#: The Jinja filters, each named after its function (``{{ job.created_at|moment }}``).
FILTERS: Final[tuple[Callable[..., Any], ...]] = (
    when,
    moment,
    zoned,
    every,
    age,
    pretty,
    compact,
    shown,
    tone,
    label,
    part,
    by_attempt,
)


#: Where ``next`` may lead besides the dashboard: the pages e-mails link to (issue 22).
NEXT_PREFIXES: Final = ("/admin/", "/orders/", "/purchase-orders/", "/invoices/", "/marketplace/")


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a dashboard or e-mail-link path only, never
    another site (``//evil.example`` and ``/\\evil.example`` are absolute URLs to
    browsers)."""
    if value == "/":
        return value
    if (
        value
        and value.startswith(NEXT_PREFIXES)
        and not value.startswith(SIGN_IN_PATH)
        and "\\" not in value
        and value.isprintable()
    ):
        return value
    return HOME_PATH


# -- pages and static files ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Asset:
    """A static file held in memory: a few small files, read once per app."""

    body: bytes
    media_type: str
    etag: str


def _asset(name: str, media_type: str) -> Asset:
    body = resources.files(PACKAGE).joinpath("static", name).read_bytes()
    return Asset(body, media_type, f'"{hashlib.sha256(body).hexdigest()[:20]}"')


class Pages:
    """The dashboard's templates and static files, loaded once per app."""

    def __init__(self) -> None:
        self.templates = Environment(
            loader=PackageLoader(PACKAGE, "templates"),
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )
        self.templates.filters.update({f.__name__: f for f in FILTERS})
        self.assets = {name: _asset(name, kind) for name, kind in STATIC_TYPES.items()}

    def render(
        self,
        template: str,
        *,
        auth: SessionAuth | None,
        title: str,
        status: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        """A page; never cached, since it holds job data and the session's CSRF token.

        ``manager`` tells the header whether to show the dashboard's sections: staff
        reach the e-mail pages too, and a link to a page that refuses them is noise."""
        html = self.templates.get_template(template).render(
            auth=auth,
            csrf=auth.session.csrf_token if auth else None,
            title=title,
            manager=auth is not None and auth.user.role in MANAGER_ROLES,
            **context,
        )
        return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})

    def error(self, status: int, message: str) -> HTMLResponse:
        """An error page (``auth`` unknown here: the header shows no user)."""
        return self.render(
            "error.html",
            auth=None,
            title=ERROR_TITLES.get(status, "Error"),
            status=status,
            status_code=status,
            message=message,
        )

    def refusal(self, request: Request, status: int, detail: str) -> Response:
        """What a browser gets instead of the API's JSON errors."""
        if status == 401:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(
                f"{SIGN_IN_PATH}?{urlencode({'next': target})}",
                status_code=303,
                headers={"Cache-Control": "no-store"},
            )
        if status == 403:
            return self.error(403, FORBIDDEN_TEXT)
        if status == 404:
            return self.error(404, NOT_FOUND_TEXT)
        return self.error(status, detail)

    def asset(self, name: str, request: Request) -> Response:
        """A static file with its ETag; ``no-cache`` so a new release is picked up on
        the next page load while an unchanged file costs a 304."""
        found = self.assets.get(name)
        if found is None:
            return self.error(404, NOT_FOUND_TEXT)
        headers = {"ETag": found.etag, "Cache-Control": "no-cache"}
        if request.headers.get("if-none-match") == found.etag:
            return Response(status_code=304, headers=headers)
        return Response(found.body, media_type=found.media_type, headers=headers)


def page_route(pages: Pages) -> type[APIRoute]:
    """A route class turning every refusal of a dashboard route into a page.

    A route class rather than exception handlers: handlers are the app's, and the
    API's routes must keep answering JSON. This one sees the errors of the route's
    dependencies too (no session, wrong role), which a decorator on the handler would
    not.
    """

    class PageRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def page(request: Request) -> Response:
                try:
                    response = await handler(request)
                except StarletteHTTPException as exc:
                    response = pages.refusal(request, exc.status_code, str(exc.detail))
                except RequestValidationError as exc:
                    problems = validation_details(exc.errors())
                    message = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
                    response = pages.error(400, message or "invalid request")
                except ILSError as exc:
                    text = str(exc)
                    if isinstance(exc, ConfigurationError):
                        # Its message may name hosts and URLs: the log gets it, not the page.
                        logging.getLogger(__name__).error("configuration error: %s", exc)
                        text = "service unavailable"
                    response = pages.error(status_for(exc), text)
                response.headers.update(SECURITY_HEADERS)
                return response

            return page

    return PageRoute

"""``GET /``: the way in for someone who just started ILS.

It says what this is and where to go: the dashboard (for managers), the API docs, the
demo's sign-in; signed in, it names the user and their company and links their own
pages. A page anyone may see (nothing on it but links and the viewer's own name), so a
browser pointed at the server's address no longer meets a JSON 404.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from ils.web.dashboard.pages import Pages
from ils.web.deps import SessionDep, StateDep
from ils.web.security import SESSION_COOKIE


class LandingPage:
    """Renders the landing page with the caller's session, if any."""

    def __init__(self, pages: Pages) -> None:
        self.pages = pages

    async def show(self, request: Request, session: SessionDep, state: StateDep) -> HTMLResponse:
        auth = await state.auth.find(session, request.cookies.get(SESSION_COOKIE))
        return self.pages.render(
            "landing.html",
            auth=auth,
            title="Welcome",
            section="home",
            company=None if auth is None else auth.company,
        )

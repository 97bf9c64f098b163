"""``GET /`` says what ILS is and where to go, signed out and signed in."""

from __future__ import annotations

import httpx

from ils.domain.companies import CompanyKind, Role
from tests.web.conftest import SignedIn


async def test_signed_out_the_landing_page_offers_sign_in_and_the_api_docs(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert 'href="/admin/sign-in?next=%2Fadmin%2Fqueues"' in page
    assert 'href="/docs"' in page
    assert "Signed in as" not in page


async def test_signed_in_it_names_the_user_and_links_their_pages(signed_in: SignedIn) -> None:
    admin, user = await signed_in(Role.ADMIN, CompanyKind.LAB)
    page = (await admin.get("/")).text
    assert f"Signed in as <strong>{user.email}</strong>" in page
    assert "The queues dashboard" in page
    staff, member = await signed_in(Role.STAFF, CompanyKind.PRACTICE)
    page = (await staff.get("/")).text
    assert f"Signed in as <strong>{member.email}</strong>" in page
    assert "The queues dashboard" not in page  # not a manager: no dashboard link
    assert 'href="/api/orders"' in page

"""STARTTLS, implicit TLS and authentication against a real server on 127.0.0.1.

The server's certificate is self-signed (made with ``openssl`` for this module), so
the transport runs with ``validate_certs=False`` here; with validation on, the same
server is refused.
"""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from ils.jobs.model import JobState
from ils.settings import SmtpSettings
from tests.workers.conftest import EnvFactory, smtp_to
from tests.workers.support import RunningServer, start_mail_server

USER, PASSWORD = "ils@lab.example", "s3cret pass"
# aiosmtpd warns about AUTH without STARTTLS; on the implicit-TLS server it is TLS.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@pytest.fixture(scope="module")
def server_tls(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    """A TLS context with a throwaway self-signed certificate for 127.0.0.1."""
    directory = tmp_path_factory.mktemp("tls")
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False, auth_data=USER if ok else None)


@pytest.fixture
def starttls_server(server_tls: ssl.SSLContext) -> Iterator[RunningServer]:
    """A plain connection that must be upgraded with STARTTLS, then authenticated."""
    server = start_mail_server(
        tls_context=server_tls,
        require_starttls=True,
        auth_required=True,
        authenticator=authenticator,
    )
    yield server
    server.controller.stop()


@pytest.fixture
def tls_server(server_tls: ssl.SSLContext) -> Iterator[RunningServer]:
    """TLS from the first byte (port 465 style), AUTH required. (aiosmtpd counts only
    STARTTLS as TLS for its AUTH check, hence ``auth_require_tls=False`` here.)"""
    server = start_mail_server(
        ssl_context=server_tls,
        auth_required=True,
        auth_require_tls=False,
        authenticator=authenticator,
    )
    yield server
    server.controller.stop()


async def confirm(env_factory: EnvFactory, server: RunningServer, **smtp: Any) -> Any:
    env = await env_factory(smtp=smtp_to(server, **smtp))
    ref = await env.system.helpers.queue_order_confirmation_email(
        env.network.order.id, env.network.orderer.id
    )
    (record,) = await env.run(ref)
    return record


@pytest.mark.parametrize("mode", ["starttls", "tls"])
async def test_an_encrypted_authenticated_session_delivers(
    make_env: EnvFactory, mode: str, request: pytest.FixtureRequest
) -> None:
    server: RunningServer = request.getfixturevalue(f"{mode}_server")
    record = await confirm(
        make_env,
        server,
        security=mode,
        username=USER,
        password=PASSWORD,
        validate_certs=False,
    )
    assert record.state is JobState.COMPLETED, record.failed_reason
    (message,) = server.handler.messages()
    assert message.tls and message.login == USER
    assert message.rcpt_tos == ["ann@brightside.example"]


async def test_a_wrong_password_fails_the_job_at_once(
    make_env: EnvFactory, starttls_server: RunningServer
) -> None:
    record = await confirm(
        make_env,
        starttls_server,
        security="starttls",
        username=USER,
        password="wrong",
        validate_certs=False,
    )
    assert (record.state, record.attempts_made) == (JobState.FAILED, 1)
    assert "authentication failed" in (record.failed_reason or "")
    assert "535" in (record.failed_reason or "")
    assert starttls_server.handler.messages() == []


async def test_an_unverifiable_certificate_is_refused(
    make_env: EnvFactory, tls_server: RunningServer
) -> None:
    record = await confirm(make_env, tls_server, security="tls", username=USER, password=PASSWORD)
    assert record.state is JobState.FAILED
    assert "CERTIFICATE_VERIFY_FAILED" in (record.failed_reason or "")
    assert tls_server.handler.messages() == []


def test_the_default_port_follows_the_security_mode() -> None:

    assert [
        SmtpSettings(host="h", security=m).effective_port for m in ("none", "starttls", "tls")
    ] == [25, 587, 465]
    assert SmtpSettings(host="h", port=2525).effective_port == 2525
    assert not SmtpSettings(host="").configured

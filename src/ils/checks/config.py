"""Checks of the settings themselves: that they load, the session key, time zone data
and the public URL. None of them talks to a server."""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence
from urllib.parse import urlsplit

from pydantic import ValidationError
from pydantic_settings import SettingsError

from ils.checks.result import CheckResult, ok, problem, warning
from ils.errors import ConfigurationError
from ils.settings import Settings, load_settings

#: Time zones that must load: a schedule's "every day at 07:00" is in a company's zone.
TIME_ZONES = ("Europe/London", "America/New_York", "Australia/Sydney")


# -- settings --------------------------------------------------------------------------


def _env_name(loc: Sequence[int | str]) -> str:
    """The environment variable behind a validation error's location."""
    parts = [str(part) for part in loc]
    if not parts:
        return "settings"
    if parts[0].isupper():  # an alias such as REDIS_PORT is its own variable name
        return "__".join(parts)
    return "ILS_" + "__".join(part.upper() for part in parts)


def settings_error_message(exc: ValidationError | SettingsError | ConfigurationError) -> str:
    """What is wrong with the settings, one ``VARIABLE: reason`` per error.

    The offending values are left out on purpose: the variable may be a password.
    """
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{_env_name(error['loc'])}: {error['msg']}" for error in exc.errors(include_url=False)
        )
    return str(exc)


def load_settings_checked() -> tuple[Settings | None, CheckResult]:
    """Load the settings as every command does, turning a bad value into a result.

    Returns:
        The settings (``None`` when they do not load) and the ``settings`` result.
    """
    try:
        settings = load_settings()
    except (ValidationError, SettingsError, ConfigurationError) as exc:
        return None, problem(
            "settings",
            f"the settings do not load: {settings_error_message(exc)}",
            "correct or unset the variables named (in the environment or in .env)",
            fatal=True,
        )
    return settings, ok("settings", "the environment and .env give valid settings")


# -- secret key ------------------------------------------------------------------------


async def check_secret_key(settings: Settings, timeout_s: float) -> list[CheckResult]:
    """The key that signs session cookies is one every web server shares.

    The rules are ``ils.secret_key``'s (the same function the web app calls): with
    PostgreSQL or Redis several web servers may run, so the key must come from outside
    and be long enough; the embedded default generates its own under ``data_dir``.
    That function is only asked when it will not generate a key: a check creates
    nothing.
    """
    from ils.secret_key import GENERATE_COMMAND, SECRET_KEY_FILE, resolve_secret_keys

    fix = "set ILS_SECRET_KEY (or ILS_SECRET_KEY_FILE) to the same key on every web server"
    configured = bool(settings.secret_key.strip()) or settings.secret_key_file is not None
    if configured or not settings.embedded:
        try:
            keys = resolve_secret_keys(settings)
        except ConfigurationError as exc:
            message = str(exc)
            # Most of its messages say how to make a key already.
            how = "" if GENERATE_COMMAND in message else f"; make one with {GENERATE_COMMAND}"
            return [problem("secret_key", message, fix + how, fatal=True)]
        source = (
            f"ILS_SECRET_KEY_FILE ({settings.secret_key_file})"
            if settings.secret_key_file is not None
            else "ILS_SECRET_KEY"
        )
        rotation = f", {len(keys.previous)} previous key(s) still accepted" if keys.previous else ""
        return [ok("secret_key", f"the session key comes from {source}{rotation}")]
    path = settings.data_dir / SECRET_KEY_FILE
    if path.exists() and not path.read_text().strip():
        return [problem("secret_key", f"{path} is empty", f"delete it, or {fix}", fatal=True)]
    state = "kept in" if path.exists() else "generated at the first start into"
    return [ok("secret_key", f"not set: the embedded default's own key is {state} {path}")]


# -- time zones ------------------------------------------------------------------------


async def check_time_zones(settings: Settings, timeout_s: float) -> list[CheckResult]:
    """The IANA time zone database is there: schedules run at a company's local time."""
    missing: list[str] = []
    for name in TIME_ZONES:
        try:
            zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            missing.append(name)
    if missing:
        return [
            problem(
                "time_zones",
                f"time zone data is missing ({', '.join(missing)} do not load): schedules "
                "in local time cannot run",
                "install tzdata: `pip install tzdata`, or the system package "
                "(`apt-get install tzdata`)",
            )
        ]
    return [ok("time_zones", "time zone data is available")]


# -- public URL ------------------------------------------------------------------------

_LOOPBACK = ("localhost", "127.0.0.1", "::1", "0.0.0.0")  # noqa: S104 (names, not a bind)


async def check_public_url(settings: Settings, timeout_s: float) -> list[CheckResult]:
    """ILS_PUBLIC_URL is an absolute http(s) URL: it is the base of every e-mail's links."""
    url = settings.public_url
    fix = "set ILS_PUBLIC_URL to where people reach the platform, e.g. https://lab.example.com"
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 (raises ValueError on a port that is not a number)
    except ValueError as exc:
        return [problem("public_url", f"ILS_PUBLIC_URL {url!r} is not a URL: {exc}", fix)]
    if parts.scheme not in ("http", "https") or not host:
        return [problem("public_url", f"ILS_PUBLIC_URL {url!r} is not an absolute URL", fix)]
    if parts.username is not None or parts.password is not None:
        return [
            problem(
                "public_url",
                "ILS_PUBLIC_URL carries credentials: every e-mail would show them",
                fix,
            )
        ]
    if parts.query or parts.fragment:
        return [
            problem(
                "public_url",
                f"ILS_PUBLIC_URL {url!r} has a query or fragment: links are built by "
                "appending paths to it",
                fix,
            )
        ]
    if host in _LOOPBACK and (settings.smtp.configured or not settings.embedded):
        return [
            warning(
                "public_url",
                f"ILS_PUBLIC_URL is {url}: links in e-mails point at the reader's own machine",
                fix,
            )
        ]
    return [ok("public_url", f"links in e-mails start with {url}")]

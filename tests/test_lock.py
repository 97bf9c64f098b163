"""requirements.lock and pyproject.toml agree, and this environment was installed from the lock.

A range in pyproject.toml alone let a fresh install pull a newer redis-py than the
one the code was checked with (mypy went red on one machine, green on another). The lock
pins every package; these tests fail as soon as someone changes a dependency without
running ``scripts/lock``, or installs without ``-c requirements.lock``.
"""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def _lock() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for raw in (ROOT / "requirements.lock").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep, f"requirements.lock: {line!r} is not pinned with =="
        pins[canonicalize_name(name)] = Version(version)
    return pins


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [Requirement(text) for text in project["dependencies"]]
    declared += [Requirement(text) for text in project["optional-dependencies"]["dev"]]
    return declared


def _applies(requirement: Requirement, extras: tuple[str, ...] = ("",)) -> bool:
    if requirement.marker is None:
        return True
    env = default_environment()
    return any(requirement.marker.evaluate({**env, "extra": extra}) for extra in extras)


def test_every_declared_dependency_is_pinned_within_its_range() -> None:
    pins = _lock()
    problems = []
    for requirement in _declared():
        if not _applies(requirement):
            continue
        pinned = pins.get(canonicalize_name(requirement.name))
        if pinned is None:
            problems.append(f"{requirement.name} is not in requirements.lock")
        elif not requirement.specifier.contains(pinned, prereleases=True):
            problems.append(f"{requirement.name}=={pinned} is outside {requirement.specifier}")
    assert not problems, "run scripts/lock: " + "; ".join(problems)


def test_the_lock_is_closed_under_the_dependencies_of_what_it_pins() -> None:
    """Every package a pinned package needs is pinned too (nothing floats in)."""
    pins = _lock()
    missing = set()
    for name in pins:
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue  # not for this platform (a marker excluded it)
        for text in requires:
            requirement = Requirement(text)
            if _applies(requirement) and canonicalize_name(requirement.name) not in pins:
                missing.add(f"{requirement.name} (needed by {name})")
    assert not missing, "run scripts/lock: not pinned: " + ", ".join(sorted(missing))


def test_this_environment_was_installed_from_the_lock() -> None:
    pins = _lock()
    drift = []
    for name, version in pins.items():
        try:
            installed = Version(metadata.version(name))
        except metadata.PackageNotFoundError:
            continue
        if installed != version:
            drift.append(f"{name} {installed} installed, {version} locked")
    assert not drift, "install with pip install -c requirements.lock: " + "; ".join(drift)

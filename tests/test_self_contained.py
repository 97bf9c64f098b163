"""The repository stands on its own: nothing in it reads or points at a sibling checkout.

Developers and CI have a folder of design notes and data beside the repository; a fresh
clone elsewhere does not. The product, its tests and its docs keep their own copies
(``docs/``, ``tests/data/``), and these tests hold them to it: no file names the sibling
folder, and the whole suite is collected from a copy of the repository placed where
nothing is beside it.

The files checked are the ones a commit would carry: tracked, plus new ones git does not
ignore (so a test added but not yet committed is not reported as missing from the copy).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Final

import pytest

ROOT: Final = Path(__file__).resolve().parents[1]
# Built from parts so that this file does not name the sibling folder itself.
SIBLING: Final = "sha" + "red"
NEEDLES: Final = tuple(
    needle.encode()
    for needle in (f"../{SIBLING}", f"{SIBLING}/design", f"{SIBLING}/data", f"{SIBLING}/seed")
)
# ``Path(...) / "<sibling>"``: the folder reached through path joins instead of a string.
PATH_JOIN: Final = re.compile(rb"""/\s*["']""" + SIBLING.encode() + rb"""["']""")
# Fewer than this many tests collected means whole modules went missing.
MIN_TESTS: Final = 1000


def repository_files() -> list[Path]:
    """The repository's files, relative to its root: tracked, plus new and not ignored."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    names = sorted({name for name in listed.decode().split("\0") if name})
    # A tracked file deleted in the work tree is not part of the next commit.
    return [Path(name) for name in names if (ROOT / name).is_symlink() or (ROOT / name).exists()]


def is_binary(data: bytes) -> bool:
    """Git's own test: a NUL byte in the first 8,000 bytes."""
    return b"\0" in data[:8000]


def test_no_file_points_at_the_sibling_checkout() -> None:
    found: list[str] = []
    for name in repository_files():
        path = ROOT / name
        if path.is_symlink():
            target = os.readlink(path).encode()
            if any(needle in target for needle in NEEDLES):
                found.append(f"{name}: symlink to {target.decode()}")
            continue
        data = path.read_bytes()
        if is_binary(data):
            continue
        for number, line in enumerate(data.splitlines(), start=1):
            if any(needle in line for needle in NEEDLES) or PATH_JOIN.search(line):
                found.append(f"{name}:{number}: {line.decode(errors='replace').strip()}")
    assert not found, "files that point outside the repository:\n" + "\n".join(found)


@pytest.mark.slow
def test_the_suite_is_collected_from_a_copy_with_nothing_beside_it(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    for name in repository_files():
        target = copy / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target, follow_symlinks=False)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["repo"]

    # Collection only: no test runs in the child, so this one cannot recurse. The child
    # prints where ``ils`` came from, to prove it imported the copy and not this checkout.
    script = (
        "import sys, ils, pytest; "
        "print('ils from', ils.__file__, flush=True); "
        "sys.exit(pytest.main(['--collect-only', '-q', '-p', 'no:cacheprovider']))"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    env["PYTHONPATH"] = str(copy / "src")
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    tail = "\n".join(output.splitlines()[-40:])
    assert result.returncode == 0, f"collection failed in the copy:\n{tail}"
    assert f"ils from {copy / 'src' / 'ils' / '__init__.py'}" in output, tail
    # "N tests collected in ..." only when nothing failed ("N tests collected, M errors").
    summary = re.search(r"^(\d+) tests? collected in ", output, re.MULTILINE)
    assert summary is not None, f"no clean collection summary:\n{tail}"
    assert int(summary.group(1)) > MIN_TESTS, tail

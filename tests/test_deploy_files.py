"""The deployment files say what the code reads: every variable in the example
environment is a setting (a typo would be ignored silently, since settings ignore
unknown variables), and the file loads as it stands."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from ils.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "deploy" / "ils.env.example"
#: The original deployment's variables, read without the ILS_ prefix.
SEED_VARIABLES = {"REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD"}


def _setting_names(model: type[BaseModel], prefix: str) -> set[str]:
    names = set()
    for name, field in model.model_fields.items():
        env = f"{prefix}{name.upper()}"
        names.add(env)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= _setting_names(annotation, f"{env}__")
    return names


def test_every_variable_of_the_example_is_a_setting() -> None:
    known = _setting_names(Settings, "ILS_") | SEED_VARIABLES
    mentioned = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", EXAMPLE.read_text(), re.M))
    queue_overrides = {v for v in mentioned if v.startswith("ILS_QUEUES__")}
    assert mentioned - known - queue_overrides == set()
    assert "ILS_SECRET_KEY" in mentioned and "ILS_DATABASE_URL" in mentioned


def test_the_example_environment_loads() -> None:
    settings = Settings(_env_file=EXAMPLE)
    assert settings.database_url.startswith("postgresql+asyncpg://")
    assert settings.storage.backend == "s3"
    assert settings.redis_require_noeviction is True

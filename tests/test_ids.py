"""Ordered ids are UUIDv7 hex: the shape the key columns and URLs expect, unique, and
ordered by the millisecond they were made (what keeps an index's inserts on its last
pages: ``ils.ids``)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest

from ils.domain.types import ID_LENGTH
from ils.ids import ordered_id
from ils.jobs.catalogue import build_catalogue
from ils.jobs.model import NewJob, new_job_id
from ils.jobs.stores.local.sql import new_job_values
from ils.settings import Settings
from tests.support.clock_edge import next_millisecond


def _local_job_id() -> str:
    """The id the local store gives a job added without one."""
    config = build_catalogue(Settings())["email"]
    return str(new_job_values(config, NewJob("order-confirmation", {}), 0)["id"])


#: What makes time-ordered keys besides notification rows (whose test is in
#: tests/workers/test_company_notifications.py): the function, a job the producer
#: names, a job the local store names.
MAKERS: dict[str, Callable[[], str]] = {
    "ordered_id": ordered_id,
    "producer job": new_job_id,
    "local store job": _local_job_id,
}


def test_an_id_is_a_version_7_uuid_in_32_lower_case_hex_digits() -> None:
    for _ in range(1_000):
        made = ordered_id()
        assert len(made) == ID_LENGTH
        assert made == made.lower()
        parsed = uuid.UUID(hex=made)
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122


def test_an_id_carries_the_millisecond_it_was_made() -> None:
    before = time.time_ns() // 1_000_000
    made = ordered_id()
    after = time.time_ns() // 1_000_000
    assert before <= int(made[:12], 16) <= after


@pytest.mark.parametrize("maker", MAKERS.values(), ids=MAKERS.keys())
def test_ids_made_in_later_milliseconds_sort_after_earlier_ones(maker: Callable[[], str]) -> None:
    """uuid4 keys fail this: they land anywhere in an index."""
    made = []
    for _ in range(50):
        next_millisecond()
        made.append(maker())
    assert made == sorted(made)


def test_ids_are_unique_within_one_millisecond() -> None:
    made = [ordered_id() for _ in range(20_000)]
    assert len(set(made)) == len(made)

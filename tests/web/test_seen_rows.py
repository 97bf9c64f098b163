"""The hub's record of the rows it handed (``ils.web.seen_rows``).

The hub skips reading its poll's window when the database's count of the window's
rows equals the count of rows it handed; a count that is wrong either way costs a
needless read (too low) or, worse, a row never delivered (too high). So the record
is checked against the plain definition on random histories: rows handed in any
order (late commits), the same row twice, users connecting and leaving, old rows
dropped.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from ils.web.seen_rows import SeenRows

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
USERS = ["u1", "u2", "u3"]


def at(tenths: int) -> datetime:
    return T0 + timedelta(seconds=tenths / 10)


handed = st.tuples(st.integers(0, 40), st.integers(0, 300), st.sampled_from(USERS))
steps = st.lists(
    st.one_of(
        st.tuples(st.just("hand"), handed),
        st.tuples(st.just("forget"), st.integers(0, 300)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(
    steps=steps,
    window=st.tuples(st.integers(0, 300), st.integers(0, 300)),
    connected=st.sets(st.sampled_from(USERS)),
)
def test_counts_and_ids_match_the_plain_definition(
    steps: list[tuple[str, object]], window: tuple[int, int], connected: set[str]
) -> None:
    seen = SeenRows()
    model: dict[str, tuple[datetime, str]] = {}
    horizon = at(0)
    for step, value in steps:
        if step == "hand":
            number, tenths, user = value  # type: ignore[misc]
            row_id = f"row-{number}-{tenths}-{user}"  # a row's time and user are its own
            seen.add(row_id, at(tenths), user)
            model.setdefault(row_id, (at(tenths), user))
        else:
            horizon = max(horizon, at(value))  # type: ignore[arg-type]
            seen.forget_before(horizon)
            model = {key: row for key, row in model.items() if row[0] >= horizon}
    since, until = sorted(at(tenths) for tenths in window)
    since = max(since, horizon)
    expected = sum(
        1 for time, user in model.values() if since <= time < until and user in connected
    )
    assert seen.count(since, until, connected) == expected
    # Every row kept by the definition is still known by id; a forgotten one may
    # linger only behind a newer one handed before it.
    assert all(row_id in seen for row_id in model)


def test_a_row_handed_twice_counts_once() -> None:
    seen = SeenRows()
    seen.add("a", at(10), "u1")
    seen.add("a", at(10), "u1")
    assert seen.count(at(0), at(20), {"u1"}) == 1
    assert len(seen) == 1


def test_only_connected_users_rows_count() -> None:
    seen = SeenRows()
    seen.add("a", at(10), "u1")
    seen.add("b", at(11), "u2")
    assert seen.count(at(0), at(20), {"u2"}) == 1
    assert seen.count(at(0), at(20), set()) == 0


def test_forgetting_drops_old_rows_and_their_ids() -> None:
    seen = SeenRows()
    for n in range(10):
        seen.add(f"r{n}", at(n), "u1")
    seen.forget_before(at(5))
    assert seen.count(at(0), at(100), {"u1"}) == 5
    assert "r4" not in seen
    assert "r5" in seen
    assert len(seen) == 5


def test_a_late_row_behind_a_newer_one_is_forgotten_with_it() -> None:
    seen = SeenRows()
    seen.add("new", at(50), "u1")
    seen.add("late", at(10), "u1")  # committed late, handed after the newer row
    seen.forget_before(at(20))
    # Out of the counts at once; its id goes when the row ahead of it does.
    assert seen.count(at(0), at(100), {"u1"}) == 1
    assert "late" in seen
    seen.forget_before(at(60))
    assert "late" not in seen
    assert len(seen) == 0

"""Which master the watch believes, and when it calls for a move (no servers: the
sentinels are stand-ins answering ``SENTINEL MASTER``; the real fail-over is in
``tests/deploy/test_redis_sentinel.py``)."""

from __future__ import annotations

from typing import Any

import pytest
from redis import exceptions as redis_errors

from ils.jobs.stores.redis.master_watch import Address, MasterWatch
from ils.redis_settings import RedisConnection

CONNECTION = RedisConnection(sentinels=(("127.0.0.1", 1), ("127.0.0.1", 2)), service="svc")


class StandIn:
    """A sentinel that names ``master`` under ``epoch`` (or fails, with ``master`` None)."""

    def __init__(self, epoch: int, master: Address | None, *, healthy: bool = True) -> None:
        self.epoch = epoch
        self.master = master
        self.healthy = healthy

    async def aclose(self) -> None:
        return None

    async def sentinel_master(self, service: str) -> dict[str, Any]:
        assert service == "svc"
        if self.master is None:
            raise redis_errors.ConnectionError("unreachable")
        ip, port = self.master
        return {
            "ip": ip,
            "port": port,
            "config-epoch": self.epoch,
            "is_master": True,
            "is_sdown": not self.healthy,
            "is_odown": False,
            "num-other-sentinels": 1,
        }


def _watch(moves: list[Address], *sentinels: StandIn) -> MasterWatch:
    async def on_switch(master: Address) -> None:
        moves.append(master)

    watch = MasterWatch(CONNECTION, 60, on_switch, timeout_s=0.5)
    watch._sentinel.sentinels = list(sentinels)  # type: ignore[assignment]
    return watch


async def test_the_newest_configuration_wins_over_a_sentinel_not_yet_told() -> None:
    stale = StandIn(1, ("10.0.0.1", 6379))
    told = StandIn(2, ("10.0.0.2", 6379))
    watch = _watch([], stale, told)
    try:
        assert await watch.current_master() == ("10.0.0.2", 6379)
    finally:
        await watch.close()


async def test_unreachable_or_master_down_answers_are_not_believed() -> None:
    down = StandIn(5, ("10.0.0.9", 6379), healthy=False)
    gone = StandIn(9, None)
    fine = StandIn(1, ("10.0.0.1", 6379))
    watch = _watch([], down, gone, fine)
    try:
        assert await watch.current_master() == ("10.0.0.1", 6379)
        fine.master = None
        assert await watch.current_master() is None
    finally:
        await watch.close()


async def test_a_move_is_called_once_and_not_for_the_first_answer() -> None:
    moves: list[Address] = []
    sentinel = StandIn(1, ("10.0.0.1", 6379))
    watch = _watch(moves, sentinel)
    try:
        await watch.check()
        await watch.check()
        assert moves == []  # the master the connections were made to
        sentinel.epoch, sentinel.master = 2, ("10.0.0.2", 6379)
        await watch.check()
        await watch.check()
        assert moves == [("10.0.0.2", 6379)]
        sentinel.master = None  # no answer: nothing moves
        await watch.check()
        assert moves == [("10.0.0.2", 6379)]
    finally:
        await watch.close()


async def test_a_move_that_failed_is_tried_again_at_the_next_check() -> None:
    tries: list[Address] = []

    async def on_switch(master: Address) -> None:
        tries.append(master)
        if len(tries) == 1:
            raise ConnectionError("dropping a connection failed")

    sentinel = StandIn(1, ("10.0.0.1", 6379))
    watch = MasterWatch(CONNECTION, 60, on_switch, timeout_s=0.5)
    watch._sentinel.sentinels = [sentinel]  # type: ignore[assignment]
    try:
        await watch.check()
        sentinel.epoch, sentinel.master = 2, ("10.0.0.2", 6379)
        with pytest.raises(ConnectionError):
            await watch.check()
        await watch.check()
        await watch.check()
        assert tries == [("10.0.0.2", 6379), ("10.0.0.2", 6379)]
        assert watch.master == ("10.0.0.2", 6379)
    finally:
        await watch.close()

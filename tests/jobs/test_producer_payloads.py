"""Unset optional payload fields are left out of the job, as the TypeScript producers do.

The Node service sends ``{orderId, userId, trackingNumber}`` for a shipment e-mail with no
carrier; a ``"carrier": null`` from us would be a different payload for the same job on
a shared queue (and one a strict consumer may refuse).
"""

from __future__ import annotations

from pathlib import Path

from ils.jobs.system import JobSystem
from ils.settings import Settings


async def test_unset_optionals_are_left_out_and_set_ones_kept(tmp_path: Path) -> None:
    system = await JobSystem.open(Settings(_env_file=None, data_dir=tmp_path))
    try:
        bare = await system.helpers.queue_shipment_notification_email("o1", "u1", "T1")
        full = await system.helpers.queue_shipment_notification_email(
            "o1", "u1", "T1", carrier="Royal Mail"
        )
        briefing = await system.helpers.queue_daily_briefing("c1", "2026-11-03")
        bare_job = await system.local.get_job("email", bare.job_id)
        full_job = await system.local.get_job("email", full.job_id)
        briefing_job = await system.local.get_job("ai", briefing.job_id)
        assert bare_job is not None and full_job is not None and briefing_job is not None
        assert "carrier" not in bare_job.data
        assert full_job.data["carrier"] == "Royal Mail"
        assert "userIds" not in briefing_job.data
        assert None not in bare_job.data.values()
    finally:
        await system.close()

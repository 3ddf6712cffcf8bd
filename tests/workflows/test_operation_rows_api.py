"""The defect as a user found it: a reboot and a delete sent together. The delete
cancels the reboot, often before its first step; every time, no Operation row of
the server may stay `running`. The real API (its own process), the real control
worker, a host on test:///default."""

from __future__ import annotations

import asyncio

import httpx
from sqlmodel import select

from tests.workflows.conftest import HostFactory, new_server, run, session
from vmflow.models import Instance, Operation
from vmflow.settings import Settings

ROUNDS = 4


async def gone(s: Settings, instance_id: str) -> None:
    for _ in range(600):
        with session(s) as db_s:
            inst = db_s.get(Instance, instance_id)
            running = db_s.exec(select(Operation).where(
                Operation.resource_id == instance_id, Operation.status == "running")).all()
            if inst is not None and inst.vm_state == "deleted" and not running:
                return
        await asyncio.sleep(0.1)
    raise AssertionError(f"instance {instance_id} is not deleted, or a row still runs")


async def test_reboot_and_delete_together_leave_no_row_running(
        temporal: object, hv_worker: HostFactory, image_api: str) -> None:
    async with hv_worker() as s:
        token = s.admin_token_file.read_text().strip()
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=image_api, headers=headers,
                                     timeout=180) as api:
            for _ in range(ROUNDS):
                ref = new_server(s)
                await run(temporal.client, "LaunchInstance", ref)  # type: ignore[attr-defined]
                sid = ref.instance_id
                rebooted, deleted = await asyncio.gather(
                    api.post(f"/v1/servers/{sid}/action", json={"reboot": {"type": "HARD"}}),
                    api.delete(f"/v1/servers/{sid}"))
                assert rebooted.status_code in (202, 409), rebooted.text
                # the reboot's workflow started between the delete's look and its own
                # start: 409, as for any operation; the user deletes again
                for _ in range(50):
                    if deleted.status_code != 409:
                        break
                    await asyncio.sleep(0.1)
                    deleted = await api.delete(f"/v1/servers/{sid}")
                assert deleted.status_code == 202, deleted.text
                await gone(s, sid)
                with session(s) as db_s:
                    rows = db_s.exec(select(Operation).where(
                        Operation.resource_id == sid)).all()
                by_action = {r.action: r for r in rows}
                assert by_action["delete"].status == "succeeded"
                if rebooted.status_code == 202:  # ran, or was cancelled: it ended
                    # (failed: cancelled after the power-off, the guest stayed off)
                    reboot = by_action["reboot-hard"]
                    assert reboot.status in ("succeeded", "compensated", "failed"), reboot
                    assert reboot.finished_at is not None
                    if reboot.status != "succeeded":
                        assert reboot.last_error and "cancelled" in reboot.last_error

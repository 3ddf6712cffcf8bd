"""Host states and the scheduler on the real stack: a host an admin disabled through
the API takes no launch (NoValidHost names it and the reason, nothing is left
behind), and takes launches again once enabled."""

from __future__ import annotations

import uuid

import httpx
import pytest
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from tests.workflows.conftest import HostFactory, new_delete_op, new_server, run, session
from tests.workflows.test_launch_delete import CLEAN, instance, leftovers, operation
from vmflow.models import Flavor, Host


async def test_disabled_host_takes_no_launch_until_enabled(
    temporal: WorkflowEnvironment, hv_worker: HostFactory, image_api: str
) -> None:
    # a trait only this host has: hosts of earlier tests (still fresh) cannot take it
    trait = f"CUSTOM_HS_{uuid.uuid4().hex[:8].upper()}"
    async with hv_worker(host_traits=trait) as s:
        with session(s) as db_s:
            db_s.add(Flavor(name=f"hs.{trait}", vcpus=1, ram_mb=256, disk_gb=1,
                            extra_specs={f"trait:{trait}": "required"}))
            db_s.commit()
        admin = {"Authorization": f"Bearer {s.admin_token_file.read_text().strip()}"}
        async with httpx.AsyncClient(base_url=image_api, headers=admin) as api:
            shown = (await api.get(f"/v1/hosts/{s.host}")).json()
            assert (shown["libvirt_uri"], shown["state"]) == ("test:///default", "up")
            r = await api.put(f"/v1/hosts/{s.host}",
                              json={"status": "disabled", "disabled_reason": "firmware update"})
            assert r.status_code == 200 and r.json()["status"] == "disabled"

            ref = new_server(s, flavor=f"hs.{trait}")
            with pytest.raises(WorkflowFailureError):
                await run(temporal.client, "LaunchInstance", ref)
            inst = instance(s, ref.instance_id)
            assert inst.vm_state == "error" and inst.host is None
            assert inst.fault and inst.fault.startswith("No valid host was found")
            assert f"{s.host}: disabled: firmware update" in inst.fault
            assert operation(s, ref.operation_id).status == "compensated"
            assert leftovers(s, ref.instance_id) == CLEAN
            with session(s) as db_s:
                host = db_s.get(Host, s.host)
                assert host is not None
                assert (host.status, host.disabled_reason) == ("disabled", "firmware update")

            r = await api.put(f"/v1/hosts/{s.host}", json={"status": "enabled"})
            assert r.status_code == 200 and r.json()["disabled_reason"] is None
            ok = new_server(s, flavor=f"hs.{trait}")
            assert await run(temporal.client, "LaunchInstance", ok) == s.host
            assert instance(s, ok.instance_id).vm_state == "active"
            await run(temporal.client, "DeleteInstance", new_delete_op(s, ok.instance_id))
            assert leftovers(s, ok.instance_id) == CLEAN

"""The hosts follow a floating IP's row: associate, disassociate and release each
signal-with-start its sync workflow (floatingip-<id>, SyncFloatingIp), so changes
queue on one run; a floating IP no host has NATed is released without one. (No
worker runs here: the run stays open, its input and signals are what is checked.)"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from tests.api.conftest import World
from tests.api.net_support import make_net, make_port


@pytest.fixture(scope="module")
async def external(api: httpx.AsyncClient, world: World) -> dict[str, Any]:
    net, _ = await make_net(api, world.admin, "198.18.7.0/28",
                            allocation_pools=[{"start": "198.18.7.5", "end": "198.18.7.12"}],
                            **{"router:external": True, "name": "public-sync"})
    return net


async def signals(temporal: Client, workflow_id: str) -> tuple[dict[str, Any], int]:
    """The run's input and how many change signals it got."""
    handle = temporal.get_workflow_handle(workflow_id)
    history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    payload = started.input.payloads[0].data
    count = sum(1 for e in history.events
                if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)
    return json.loads(payload), count


async def test_changes_signal_the_floating_ips_sync(api: httpx.AsyncClient, world: World,
                                                    external: dict[str, Any],
                                                    temporal: Client) -> None:
    net, _ = await make_net(api, world.alice, "10.152.7.0/24")
    port = await make_port(api, world.alice, net["id"])
    r = await api.post("/v1/floating-ips", headers=world.alice.h,
                       json={"floating_network_id": external["id"]})
    fip = r.json()
    wid = f"floatingip-{fip['id']}"
    with pytest.raises(RPCError):  # allocation alone touches no host
        await temporal.get_workflow_handle(wid).describe()
    try:
        r = await api.put(f"/v1/floating-ips/{fip['id']}", headers=world.alice.h,
                          json={"port_id": port["id"]})
        assert r.status_code == 200 and r.json()["status"] == "DOWN"  # until a host NATs it
        desc = await temporal.get_workflow_handle(wid).describe()
        assert desc.workflow_type == "SyncFloatingIp"
        assert desc.status == WorkflowExecutionStatus.RUNNING
        arg, n = await signals(temporal, wid)
        assert arg == {"floatingip_id": fip["id"],
                       "floating_ip_address": fip["floating_ip_address"]}
        assert n == 1  # the start's own signal
        for body in ({"port_id": None}, {"port_id": port["id"]}):
            r = await api.put(f"/v1/floating-ips/{fip['id']}", headers=world.alice.h,
                              json=body)
            assert r.status_code == 200
        r = await api.delete(f"/v1/floating-ips/{fip['id']}", headers=world.alice.h)
        assert r.status_code == 204
        # one run took all four changes: it reads the row again each round (the
        # release's round finds none and clears every host by the address it carries)
        assert (await signals(temporal, wid))[1] == 4
    finally:
        await temporal.get_workflow_handle(wid).terminate("test over")


async def test_release_of_an_unapplied_floating_ip_starts_nothing(
        api: httpx.AsyncClient, world: World, external: dict[str, Any],
        temporal: Client) -> None:
    r = await api.post("/v1/floating-ips", headers=world.alice.h,
                       json={"floating_network_id": external["id"]})
    fip = r.json()
    assert (await api.delete(f"/v1/floating-ips/{fip['id']}", headers=world.alice.h)
            ).status_code == 204
    with pytest.raises(RPCError):
        await temporal.get_workflow_handle(f"floatingip-{fip['id']}").describe()

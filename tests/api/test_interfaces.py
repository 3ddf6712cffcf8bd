"""Interface attach/detach, the API's part (`/v1/servers/{id}/os-interface`, Nova's
shapes): list and show, the 202 of an attach and a detach, and every refusal (bad
input, another project's server or port, a port in use, a server in the wrong state
or busy) answering 4xx with nothing changed. The workflows' control steps
(activities/control/interface_ports.py) run here in-process on the same database, as
the control worker runs them: the port made or bound, and released again."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlmodel import select
from temporalio.exceptions import ApplicationError

from activities.control.interface_ports import InterfacePortActivities
from api.services.interfaces import new_port_id
from tests.api.conftest import Caller, World, add_instance, instance_row, operations_of, session
from tests.api.net_support import make_net, make_port, net_counts
from vmflow import settings
from vmflow.contracts.ports import AttachInterfaceRequest, InterfacePort
from vmflow.network_models import InstanceNic, Port, SecurityGroup


@pytest.fixture
def acts(vmflow_home: settings.Settings) -> InterfacePortActivities:
    return InterfacePortActivities(vmflow_home)


def url(sid: str, port_id: str | None = None) -> str:
    return f"/v1/servers/{sid}/os-interface" + (f"/{port_id}" if port_id else "")


async def attach(api: httpx.AsyncClient, who: Caller, sid: str, **body: Any
                 ) -> httpx.Response:
    return await api.post(url(sid), headers=who.h, json={"interfaceAttachment": body})


def nic_rows(sid: str) -> list[InstanceNic]:
    with session() as s:
        return list(s.exec(select(InstanceNic).where(InstanceNic.instance_id == sid)))


def default_group(project_id: str) -> str:
    with session() as s:
        return s.exec(select(SecurityGroup.id).where(SecurityGroup.project_id == project_id,
                                                     SecurityGroup.name == "default")).one()


async def test_attach_made_port_shows_and_releases(api: httpx.AsyncClient, world: World,
                                                   acts: InterfacePortActivities) -> None:
    who = world.alice
    net, sub = await make_net(api, who, "172.29.1.0/24")
    assert sub is not None
    sid = add_instance(world, who, name="if-made").id
    assert (await api.get(url(sid), headers=who.h)).json() == {"interfaceAttachments": []}
    r = await attach(api, who, sid, net_id=net["id"], fixed_ips=[{"ip_address": "172.29.1.9"}])
    assert r.status_code == 202, r.text
    body = r.json()
    op_id = body["operation"]["id"]
    assert body["interfaceAttachment"] == {
        "port_id": new_port_id(op_id), "net_id": net["id"], "mac_addr": None,
        "port_state": "BUILD", "fixed_ips": [{"subnet_id": None, "ip_address": "172.29.1.9"}]}
    assert instance_row(sid).task_state == "attaching_interface"
    assert [o.action for o in operations_of(sid)] == ["attach-interface"]
    # another operation holds the server: 409, nothing new
    again = await attach(api, who, sid, net_id=net["id"])
    assert again.status_code == 409, again.text

    # the workflow's control step, as the worker runs it (twice: a retried activity)
    req = AttachInterfaceRequest(sid, op_id, network_id=net["id"], fixed_ip="172.29.1.9",
                                 security_group_ids=[default_group(who.project_id)],
                                 new_port_id=new_port_id(op_id))
    made = acts.attach_instance_port(req)
    assert acts.attach_instance_port(req) == made
    assert made == InterfacePort(sid, new_port_id(op_id), op_id)
    (row,) = nic_rows(sid)
    assert (row.port_id, row.preserve_on_delete, row.position) == (made.port_id, False, 0)

    listed = (await api.get(url(sid), headers=who.h)).json()["interfaceAttachments"]
    (one,) = listed
    assert one["port_id"] == made.port_id and one["net_id"] == net["id"]
    assert one["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "172.29.1.9"}]
    assert one["mac_addr"] and one["port_state"] == "DOWN"
    shown = await api.get(url(sid, made.port_id), headers=who.h)
    assert shown.status_code == 200 and shown.json() == {"interfaceAttachment": one}
    server = (await api.get(f"/v1/servers/{sid}", headers=who.h)).json()
    assert [e["addr"] for v in server["addresses"].values() for e in v] == ["172.29.1.9"]
    # another project sees neither the server nor its interfaces
    assert (await api.get(url(sid), headers=world.bob.h)).status_code == 404
    assert (await api.get(url(sid, made.port_id), headers=world.bob.h)).status_code == 404

    # the undo (or a detach's release): a made port is deleted, its address freed
    before = net_counts()
    acts.release_instance_port(InterfacePort(sid, "", op_id))  # by the row, as undo does
    acts.release_instance_port(InterfacePort(sid, "", op_id))  # again: nothing to do
    after = net_counts()
    assert (before["Port"] - after["Port"], before["IpAllocation"] - after["IpAllocation"]) == (
        1, 1)
    assert nic_rows(sid) == []
    assert (await api.get(url(sid), headers=who.h)).json() == {"interfaceAttachments": []}


async def test_attach_given_port_binds_and_unbinds(api: httpx.AsyncClient, world: World,
                                                   acts: InterfacePortActivities) -> None:
    who = world.alice
    net, _ = await make_net(api, who, "172.29.2.0/24")
    port = await make_port(api, who, net["id"])
    sid = add_instance(world, who, vm_state="stopped", name="if-given").id
    r = await attach(api, who, sid, port_id=port["id"])
    assert r.status_code == 202, r.text
    shown = r.json()["interfaceAttachment"]
    assert (shown["port_id"], shown["mac_addr"]) == (port["id"], port["mac_address"])
    op_id = r.json()["operation"]["id"]
    req = AttachInterfaceRequest(sid, op_id, network_id=net["id"], port_id=port["id"])
    assert acts.attach_instance_port(req).port_id == port["id"]
    with session() as s:
        row = s.get(Port, port["id"])
        assert row is not None and (row.device_id, row.device_owner) == (sid, "compute:nova")
    # a second server's attach of the same port, taken since its API check: PortInUse
    other = add_instance(world, who, name="if-taker").id
    with pytest.raises(ApplicationError) as err:
        acts.attach_instance_port(AttachInterfaceRequest(other, "op-x", port_id=port["id"]))
    assert err.value.type == "PortInUse" and nic_rows(other) == []
    # the API refuses it up front
    r = await attach(api, who, other, port_id=port["id"])
    assert (r.status_code, r.json()["error"]["type"]) == (409, "PortInUse")

    acts.release_instance_port(InterfacePort(sid, port["id"]))  # given: unbound, kept
    with session() as s:
        row = s.get(Port, port["id"])
        assert row is not None and (row.device_id, row.device_owner, row.status) == (
            "", "", "DOWN")
    assert nic_rows(sid) == []


async def test_detach(api: httpx.AsyncClient, world: World,
                      acts: InterfacePortActivities) -> None:
    who = world.alice
    net, _ = await make_net(api, who, "172.29.3.0/24")
    sid = add_instance(world, who, name="if-detach").id
    loose = await make_port(api, who, net["id"])
    before = net_counts()
    for port_id in (loose["id"], "no-such-port"):  # not this server's: 404
        r = await api.delete(url(sid, port_id), headers=who.h)
        assert r.status_code == 404, r.text
        assert (await api.get(url(sid, port_id), headers=who.h)).status_code == 404
    made = acts.attach_instance_port(AttachInterfaceRequest(
        sid, "op-detach", network_id=net["id"], new_port_id=new_port_id("op-detach")))
    assert (await api.delete(url(sid, made.port_id), headers=world.bob.h)).status_code == 404
    assert (await api.delete(url(sid, made.port_id), headers=world.rita.h)).status_code == 403
    assert operations_of(sid) == []
    r = await api.delete(url(sid, made.port_id), headers=who.h)
    assert r.status_code == 202, r.text
    assert r.json()["operation"]["status"] == "running"
    assert instance_row(sid).task_state == "detaching_interface"
    acts.release_instance_port(InterfacePort(sid, made.port_id))
    assert net_counts() == before and nic_rows(sid) == []


WRONG_STATES = ["shelved_offloaded", "building", "suspended", "rescued"]


@pytest.mark.parametrize("state", WRONG_STATES)
async def test_wrong_state_is_409(api: httpx.AsyncClient, world: World, state: str) -> None:
    net, _ = await make_net(api, world.alice, f"172.29.4.{WRONG_STATES.index(state) * 8}/29")
    sid = add_instance(world, world.alice, vm_state=state, name=f"if-{state}").id
    before = net_counts()
    r = await attach(api, world.alice, sid, net_id=net["id"])
    assert r.status_code == 409, r.text
    assert net_counts() == before and operations_of(sid) == [] and nic_rows(sid) == []


async def test_bad_input_changes_nothing(api: httpx.AsyncClient, world: World) -> None:
    who = world.alice
    net, _ = await make_net(api, who, "172.29.5.0/29")  # .2-.6: five addresses
    bare, _ = await make_net(api, who, None)
    ext, _ = await make_net(api, world.admin, "172.29.6.0/24", **{"router:external": True})
    theirs, _ = await make_net(api, world.bob, "172.29.7.0/24")
    their_port = await make_port(api, world.bob, theirs["id"])
    taken = await make_port(api, who, net["id"], fixed_ips=[{"ip_address": "172.29.5.3"}])
    no_ip = await make_port(api, who, bare["id"])
    sid = add_instance(world, who, name="if-bad").id
    await attach(api, who, add_instance(world, who, name="if-warm").id, net_id=net["id"])
    before = net_counts()
    cases: list[tuple[dict[str, Any], int, str | None]] = [
        ({}, 400, "InvalidInput"),
        ({"net_id": net["id"], "port_id": taken["id"]}, 400, "InvalidInput"),
        ({"port_id": taken["id"], "fixed_ips": [{"ip_address": "172.29.5.4"}]}, 400, None),
        ({"net_id": "no-such-net"}, 404, None),
        ({"net_id": theirs["id"]}, 404, None),
        ({"port_id": their_port["id"]}, 404, "PortNotFound"),
        ({"net_id": ext["id"]}, 409, "ExternalNetworkAttachForbidden"),
        ({"net_id": bare["id"]}, 400, "NetworkWithoutSubnet"),
        ({"port_id": no_ip["id"]}, 400, "InvalidInput"),
        ({"net_id": net["id"], "fixed_ips": [{"ip_address": "172.29.9.9"}]}, 400, None),
        ({"net_id": net["id"], "fixed_ips": [{"ip_address": "not-an-ip"}]}, 400, None),
        ({"net_id": net["id"], "fixed_ips": [{"ip_address": "172.29.5.3"}]}, 409,
         "IpAddressAlreadyAllocated"),
        ({"port_id": taken["id"], "extra": 1}, 422, None),
    ]
    for body, code, kind in cases:
        r = await attach(api, who, sid, **body)
        assert r.status_code in ((400, 422) if code == 422 else (code,)), (body, r.text)
        if kind:
            assert r.json()["error"]["type"] == kind, (body, r.text)
    # a reader may not, another project cannot see the server
    assert (await attach(api, world.rita, sid, net_id=net["id"])).status_code == 403
    assert (await attach(api, world.bob, sid, net_id=theirs["id"])).status_code == 404
    assert net_counts() == before
    # an exhausted pool: the rest of .2-.6 taken (the warm-up's workflow never ran)
    for ip in ("172.29.5.2", "172.29.5.4", "172.29.5.5", "172.29.5.6"):
        await make_port(api, who, net["id"], fixed_ips=[{"ip_address": ip}])
    before = net_counts()
    r = await attach(api, who, sid, net_id=net["id"])
    assert (r.status_code, r.json()["error"]["type"]) == (409, "IpAddressGenerationFailure")
    assert net_counts() == before
    assert operations_of(sid) == [] and nic_rows(sid) == []
    assert instance_row(sid).task_state is None

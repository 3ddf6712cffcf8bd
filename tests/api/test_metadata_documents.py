"""The metadata documents of an instance, built on the control side
(activities/control/metadata_docs.py): meta_data.json as on the config drive,
network_data.json in Nova's format (a DHCP subnet as ipv4_dhcp, a static one with
address, netmask, default route and DNS), one InstanceMetadata per address of its
ports with the floating IP as public-ipv4; the config drive carries network_data.json."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
from sqlmodel import select

from activities.control.metadata_docs import MetadataDocsActivities, config_drive
from tests.api.conftest import World, add_instance, session
from tests.api.net_support import make_net, make_port
from vmflow.contracts.metadata import InstanceMetadataRequest
from vmflow.models import Flavor, Instance
from vmflow.network_models import Network, Port
from vmflow.settings import Settings

USER_DATA = base64.b64encode(b"#!/bin/sh\necho hello\n").decode()


def give_port(port_id: str, instance_id: str) -> None:
    with session() as s:
        port = s.get(Port, port_id)
        assert port is not None
        port.device_id, port.device_owner = instance_id, "compute:nova"
        s.add(port)
        s.commit()


async def make_external(api: httpx.AsyncClient, world: World) -> dict[str, Any]:
    net, _ = await make_net(api, world.admin, "198.51.100.64/29",
                            allocation_pools=[{"start": "198.51.100.66",
                                               "end": "198.51.100.68"}],
                            **{"router:external": True, "name": "md-public"})
    return net


async def test_documents_of_an_instance_with_two_ports(
        api: httpx.AsyncClient, world: World, vmflow_home: Settings) -> None:
    dhcp_net, _ = await make_net(api, world.alice, "172.20.61.0/24",
                                 dns_nameservers=["172.20.61.1"])
    static_net, _ = await make_net(api, world.alice, "172.20.62.0/25", enable_dhcp=False,
                                   gateway_ip="172.20.62.1", dns_nameservers=["192.0.2.53"])
    inst = add_instance(world, name="md-vm", user_data=USER_DATA)
    pa = await make_port(api, world.alice, dhcp_net["id"])
    pb = await make_port(api, world.alice, static_net["id"])
    for p in (pa, pb):
        give_port(p["id"], inst.id)
    ext = await make_external(api, world)
    r = await api.post("/v1/floating-ips", headers=world.alice.h,
                       json={"floating_network_id": ext["id"], "port_id": pa["id"]})
    assert r.status_code == 201, r.text
    fip = r.json()["floating_ip_address"]

    docs = MetadataDocsActivities(vmflow_home).instance_metadata(
        InstanceMetadataRequest(inst.id)).ports
    ip_a, ip_b = (p["fixed_ips"][0]["ip_address"] for p in (pa, pb))
    with session() as s:
        vnis = {n.id: n.segmentation_id for n in s.exec(select(Network))}
        flavor = s.exec(select(Flavor).where(Flavor.id == inst.flavor_id)).one()
    assert [(d.port_id, d.network_id, d.vni, d.fixed_ip, d.public_ipv4) for d in docs] == [
        (pa["id"], dhcp_net["id"], vnis[dhcp_net["id"]], ip_a, fip),
        (pb["id"], static_net["id"], vnis[static_net["id"]], ip_b, None)]
    for d in docs:
        assert d.instance_id == inst.id and d.user_data_b64 == USER_DATA
        assert (d.hostname, d.instance_type, d.ami_id) == ("md-vm", flavor.name, inst.image_id)
        meta = json.loads(d.meta_data_json)
        assert (meta["uuid"], meta["name"], meta["project_id"]) == (
            inst.id, "md-vm", world.alice.project_id)

    net_data = json.loads(docs[0].network_data_json)
    assert docs[1].network_data_json == docs[0].network_data_json  # one per instance
    assert net_data["links"] == [
        {"id": f"tap{pa['id'][:11]}", "vif_id": pa["id"], "type": "bridge", "mtu": 1450,
         "ethernet_mac_address": pa["mac_address"]},
        {"id": f"tap{pb['id'][:11]}", "vif_id": pb["id"], "type": "bridge", "mtu": 1450,
         "ethernet_mac_address": pb["mac_address"]}]
    assert net_data["networks"] == [
        {"id": "network0", "link": f"tap{pa['id'][:11]}", "network_id": dhcp_net["id"],
         "type": "ipv4_dhcp"},
        {"id": "network1", "link": f"tap{pb['id'][:11]}", "network_id": static_net["id"],
         "type": "ipv4", "ip_address": ip_b, "netmask": "255.255.255.128",
         "routes": [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "172.20.62.1"}],
         "services": [{"type": "dns", "address": "192.0.2.53"}]}]
    assert net_data["services"] == [{"type": "dns", "address": "172.20.61.1"},
                                    {"type": "dns", "address": "192.0.2.53"}]

    with session() as s:  # the config drive: the same documents
        row = s.get(Instance, inst.id)
        assert row is not None
        drive = config_drive(s, row)
    assert json.loads(drive.meta_data_json) == json.loads(docs[0].meta_data_json)
    assert drive.network_data_json is not None
    assert json.loads(drive.network_data_json) == net_data
    assert drive.user_data_b64 == USER_DATA


async def test_an_instance_without_ports_or_row_has_no_addresses_to_serve(
        world: World, vmflow_home: Settings) -> None:
    inst = add_instance(world, name="md-noport")
    acts = MetadataDocsActivities(vmflow_home)
    assert acts.instance_metadata(InstanceMetadataRequest(inst.id)).ports == []
    assert acts.instance_metadata(InstanceMetadataRequest(
        "00000000-0000-0000-0000-000000000000")).ports == []
    with session() as s:
        row = s.get(Instance, inst.id)
        assert row is not None
        drive = config_drive(s, row)
    assert drive.network_data_json is not None
    assert json.loads(drive.network_data_json) == {"links": [], "networks": [], "services": []}

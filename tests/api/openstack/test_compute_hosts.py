"""os-hypervisors, os-services and os-availability-zone through the compute facade,
against Tempest's schemas at each microversion that changes them. No worker runs here,
so every host is down (no heartbeat)."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import World, add_instance, session
from tests.api.openstack.nova_support import C, check, fault, nova
from vmflow.models import Host

HYPERVISORS = [("2.1", "v2_1.hypervisors"), ("2.28", "v2_28.hypervisors"),
               ("2.33", "v2_33.hypervisors"), ("2.53", "v2_53.hypervisors"),
               ("2.79", "v2_53.hypervisors")]


@pytest.fixture(scope="module", autouse=True)
def two_hosts() -> None:
    with session() as s:
        for name, address in (("h1", "10.88.0.1"), ("h2", "")):
            if s.get(Host, name) is None:
                s.add(Host(name=name, hostname=name, vcpus=8, ram_mb=16384, disk_gb=100,
                           migration_address=address))
        s.commit()


@pytest.mark.parametrize(("version", "module"), HYPERVISORS)
async def test_hypervisors(api: httpx.AsyncClient, world: World, version: str,
                           module: str) -> None:
    h = nova(world.admin, version)
    listed = check(await api.get(f"{C}/os-hypervisors", headers=h), module,
                   "list_search_hypervisors")["hypervisors"]
    assert {"h1", "h2"} <= {x["hypervisor_hostname"] for x in listed}
    detail = check(await api.get(f"{C}/os-hypervisors/detail", headers=h), module,
                   "list_hypervisors_detail")["hypervisors"]
    h1 = next(x for x in detail if x["hypervisor_hostname"] == "h1")
    assert (h1["state"], h1["status"], h1["host_ip"]) == ("down", "enabled", "10.88.0.1")
    assert isinstance(h1["id"], str if version >= "2.53" else int)
    shown = check(await api.get(f"{C}/os-hypervisors/{h1['id']}", headers=h), module,
                  "get_hypervisor")["hypervisor"]
    assert shown["service"]["host"] == "h1" and shown["memory_mb"] == 16384
    check(await api.get(f"{C}/os-hypervisors/statistics", headers=h), module,
          "get_hypervisor_statistics")
    fault(await api.get(f"{C}/os-hypervisors/12345", headers=h), 400 if version >= "2.53"
          else 404)


async def test_hypervisor_servers_and_paging(api: httpx.AsyncClient, world: World) -> None:
    inst = add_instance(world, name="on-h1")  # host h1
    h = nova(world.admin, "2.53")
    r = await api.get(f"{C}/os-hypervisors?with_servers=true&hypervisor_hostname_pattern=h1",
                      headers=h)
    (only,) = check(r, "v2_53.hypervisors", "list_search_hypervisors")["hypervisors"]
    assert {"uuid": inst.id, "name": "on-h1"} in only["servers"]
    page = check(await api.get(f"{C}/os-hypervisors/detail?limit=1", headers=h),
                 "v2_53.hypervisors", "list_hypervisors_detail")
    assert len(page["hypervisors"]) == 1 and page["hypervisors_links"]
    old = nova(world.admin, "2.1")
    found = (await api.get(f"{C}/os-hypervisors/h1/servers", headers=old)).json()
    assert inst.id in {s["uuid"] for s in found["hypervisors"][0]["servers"]}
    fault(await api.get(f"{C}/os-hypervisors/nomatch/search", headers=old), 404)
    fault(await api.get(f"{C}/os-hypervisors/h1/search", headers=h), 404)  # gone at 2.53


@pytest.mark.parametrize(("version", "module"), [("2.1", "v2_1.services"),
                                                 ("2.11", "v2_11.services"),
                                                 ("2.53", "v2_53.services")])
async def test_services_list(api: httpx.AsyncClient, world: World, version: str,
                             module: str) -> None:
    h = nova(world.admin, version)
    r = await api.get(f"{C}/os-services?binary=nova-compute", headers=h)
    services = check(r, module, "list_services")["services"]
    assert {"h1", "h2"} <= {s["host"] for s in services}
    assert all(s["binary"] == "nova-compute" and s["zone"] == "nova" for s in services)
    assert (await api.get(f"{C}/os-services?binary=nova-scheduler", headers=h)).json() == {
        "services": []}
    fault(await api.get(f"{C}/os-services", headers=nova(world.alice, version)), 403)


async def test_service_update_2_53(api: httpx.AsyncClient, world: World) -> None:
    h = nova(world.admin, "2.53")
    services = (await api.get(f"{C}/os-services?host=h2", headers=h)).json()["services"]
    sid = services[0]["id"]
    r = await api.put(f"{C}/os-services/{sid}", headers=h,
                      json={"status": "disabled", "disabled_reason": "maintenance"})
    svc = check(r, "v2_53.services", "update_service")["service"]
    assert (svc["status"], svc["disabled_reason"]) == ("disabled", "maintenance")
    r = await api.put(f"{C}/os-services/{sid}", headers=h, json={"status": "enabled"})
    assert check(r, "v2_53.services", "update_service")["service"]["disabled_reason"] is None
    fault(await api.put(f"{C}/os-services/{sid}", headers=h, json={"status": "sleepy"}), 400)
    fault(await api.put(f"{C}/os-services/{sid}", headers=h, json={}), 400)
    fault(await api.put(f"{C}/os-services/not-a-uuid", headers=h, json={"status": "enabled"}),
          400)
    fault(await api.put(f"{C}/os-services/{sid}", headers=nova(world.alice, "2.53"),
                        json={"status": "enabled"}), 403)
    with session() as s:
        host = s.get(Host, "h2")
        assert host is not None and host.status == "enabled"


async def test_service_update_before_2_53(api: httpx.AsyncClient, world: World) -> None:
    h = nova(world.admin, "2.11")
    target = {"host": "h2", "binary": "nova-compute"}
    r = await api.put(f"{C}/os-services/disable-log-reason", headers=h,
                      json=target | {"disabled_reason": "disk"})
    assert check(r, "v2_11.services", "disable_log_reason")["service"]["status"] == "disabled"
    r = await api.put(f"{C}/os-services/enable", headers=h, json=target)
    assert check(r, "v2_11.services", "enable_disable_service")["service"]["status"] == \
        "enabled"
    r = await api.put(f"{C}/os-services/force-down", headers=h, json=target | {
        "forced_down": True})
    assert check(r, "v2_11.services", "update_forced_down")["service"]["forced_down"] is True
    r = await api.put(f"{C}/os-services/force-down", headers=h, json=target | {
        "forced_down": False})
    assert check(r, "v2_11.services", "update_forced_down")["service"]["forced_down"] is False
    fault(await api.put(f"{C}/os-services/enable", headers=h,
                        json={"host": "nowhere", "binary": "nova-compute"}), 404)
    fault(await api.put(f"{C}/os-services/force-down", headers=nova(world.admin, "2.10"),
                        json=target | {"forced_down": True}), 404)


async def test_availability_zones(api: httpx.AsyncClient, world: World) -> None:
    r = await api.get(f"{C}/os-availability-zone", headers=nova(world.alice))
    zones = check(r, "v2_1.availability_zone", "list_availability_zone_list")
    assert zones["availabilityZoneInfo"][0]["zoneName"] == "nova"
    r = await api.get(f"{C}/os-availability-zone/detail", headers=nova(world.admin))
    detail = check(r, "v2_1.availability_zone", "list_availability_zone_list_detail")
    assert {"h1", "h2"} <= set(detail["availabilityZoneInfo"][0]["hosts"])
    fault(await api.get(f"{C}/os-availability-zone/detail", headers=nova(world.alice)), 403)

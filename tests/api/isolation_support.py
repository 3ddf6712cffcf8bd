"""One resource of every kind owned by project A (p1, alice), for the isolation matrix
and the fuzzer: each value is keyed by the path parameter name the routes use for it, so
a route template fills itself (`fill`). Everything is made through the API where the
API can make it; rows are written directly only where the real thing needs a guest or
a running workflow (an active server, a share, its snapshot, a migration record)."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.api.conftest import Caller, World, add_instance, create_server, ensure_keypair
from tests.api.net_support import make_net, make_port
from tests.api.test_metadata_documents import give_port
from tests.api.test_migrations import add_migration
from tests.api.test_shares import add_share, add_snapshot

PARAM = re.compile(r"{(\w+)(?::\w+)?}")


def params_of(path: str) -> list[str]:
    return PARAM.findall(path)


def fill(path: str, values: dict[str, str]) -> str:
    return PARAM.sub(lambda m: values[m.group(1)], path)


async def ok(r: httpx.Response, *codes: int) -> dict[str, Any]:
    assert r.status_code in (codes or (200, 201, 202)), f"{r.request.url}: {r.text}"
    body: dict[str, Any] = r.json() if r.content else {}
    return body


async def make_project(api: httpx.AsyncClient, admin: Caller, name: str) -> str:
    r = await api.post("/v1/projects", headers=admin.h, json={"name": name})
    if r.status_code == 409:  # made by an earlier module of this package
        listed = (await ok(await api.get("/v1/projects", headers=admin.h)))["projects"]
        return str(next(p["id"] for p in listed if p["name"] == name))
    return str((await ok(r))["id"])


async def project_a_resources(api: httpx.AsyncClient, world: World,
                              tag: str) -> dict[str, str]:
    """Path parameter -> id of project A's resource of that kind (`tag` keeps names
    and address ranges apart between callers)."""
    a, admin = world.alice, world.admin
    n = {"iso": 0, "fuzz": 1}[tag]
    inst = add_instance(world, name=f"{tag}-vm")
    launched = await create_server(api, a, name=f"{tag}-launched")
    await ok(await api.post(f"/v1/servers/{inst.id}/metadata", headers=a.h,
                            json={"metadata": {f"{tag}-key": "v"}}))
    await ensure_keypair(api, a, f"{tag}-key")
    p3 = await make_project(api, admin, f"{tag}-p3")
    image = await ok(await api.post("/v1/images", headers=a.h, json={
        "name": f"{tag}-img", "disk_format": "raw", "container_format": "bare",
        "visibility": "shared"}), 201)
    await ok(await api.post(f"/v1/images/{image['id']}/members", headers=a.h,
                            json={"member": p3}))
    flavor = await ok(await api.post("/v1/flavors", headers=admin.h, json={
        "name": f"{tag}-private", "vcpus": 1, "ram": 64, "disk": 1, "is_public": False}), 201)
    await ok(await api.post(f"/v1/flavors/{flavor['id']}/access", headers=admin.h,
                            json={"project": a.project_id}))
    share_type = await ok(await api.post("/v1/share-types", headers=admin.h, json={
        "name": f"{tag}-private", "is_public": False}), 201)
    share = add_share(a, name=f"{tag}-share")
    snap = add_snapshot(share)
    schedule = await ok(await api.post(f"/v1/servers/{inst.id}/backup-schedules", headers=a.h,
                                       json={"backup_type": "daily", "rotation": 7,
                                             "every": "1d"}), 201)
    net, subnet = await make_net(api, a, f"10.{213 + n}.0.0/24", name=f"{tag}-net")
    assert subnet is not None
    port = await make_port(api, a, net["id"])
    give_port(port["id"], inst.id)
    group = await ok(await api.post("/v1/security-groups", headers=a.h,
                                    json={"name": f"{tag}-sg"}), 201)
    rule = await ok(await api.post("/v1/security-group-rules", headers=a.h, json={
        "security_group_id": group["id"], "direction": "ingress"}), 201)
    external, _ = await make_net(api, admin, f"198.51.100.{192 + 8 * n}/29",
                                 allocation_pools=[{"start": f"198.51.100.{194 + 8 * n}",
                                                    "end": f"198.51.100.{196 + 8 * n}"}],
                                 **{"router:external": True, "name": f"{tag}-public"})
    fip = await ok(await api.post("/v1/floating-ips", headers=a.h,
                                  json={"floating_network_id": external["id"]}), 201)
    migration = add_migration(inst)
    return {
        "server_id": inst.id, "key": f"{tag}-key", "name": f"{tag}-key",
        "operation_id": launched["operation"]["id"], "image_id": image["id"], "member": p3,
        "flavor_ref": flavor["id"], "project": a.project_id, "migration_id": str(migration.id),
        "sid": schedule["id"], "share_id": share.id, "snapshot_id": snap.id,
        "type_ref": share_type["id"], "type_id": share_type["id"],
        "project_id": a.project_id, "network_id": net["id"], "subnet_id": subnet["id"],
        "port_id": port["id"], "group_id": group["id"], "rule_id": rule["id"],
        "fip_id": fip["id"], "external_network_id": external["id"],
    }

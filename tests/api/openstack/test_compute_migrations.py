"""os-migrations and server migrations through the compute facade (admin): shapes per
microversion against Tempest's schemas; abort and force_complete refusals."""

from __future__ import annotations

import httpx
import pytest
from tempest.lib.common.jsonschema_validator import FORMAT_CHECKER, JSONSCHEMA_VALIDATOR

from tests.api.conftest import World, add_instance
from tests.api.openstack.nova_support import C, check, fault, nova, schema
from tests.api.test_migrations import add_migration

OS_MIGRATIONS = [("2.1", "v2_1"), ("2.23", "v2_23"), ("2.59", "v2_59"), ("2.79", "v2_59")]
LIVE = [("2.23", "v2_19"),  # the servers schemas in force at each version
         ("2.59", "v2_59"), ("2.79", "v2_79")]


@pytest.mark.parametrize(("version", "module"), OS_MIGRATIONS)
async def test_os_migrations(api: httpx.AsyncClient, world: World, version: str,
                             module: str) -> None:
    inst = add_instance(world, name=f"mig-{version}")
    live = add_migration(inst)
    cold = add_migration(inst, status="finished", mtype="migration")
    r = await api.get(f"{C}/os-migrations?instance_uuid={inst.id}",
                      headers=nova(world.admin, version))
    rows = check(r, f"{module}.migrations", "list_migrations")["migrations"]
    ids = {m["id"] for m in rows}
    assert cold.id in ids
    assert (live.id in ids) == (version >= "2.23")  # hidden before 2.23, as Nova
    fault(await api.get(f"{C}/os-migrations", headers=nova(world.alice, version)), 403)


async def test_os_migrations_paging(api: httpx.AsyncClient, world: World) -> None:
    inst = add_instance(world, name="mig-paged")
    for _ in range(3):
        add_migration(inst, status="finished", mtype="migration")
    h = nova(world.admin, "2.59")
    r = await api.get(f"{C}/os-migrations?instance_uuid={inst.id}&limit=2", headers=h)
    first = r.json()
    assert len(first["migrations"]) == 2 and first["migrations_links"]
    marker = first["migrations"][-1]["uuid"]
    r = await api.get(f"{C}/os-migrations?instance_uuid={inst.id}&marker={marker}", headers=h)
    assert len(r.json()["migrations"]) == 1
    fault(await api.get(f"{C}/os-migrations?marker=nope", headers=h), 400)
    fault(await api.get(f"{C}/os-migrations?migration_type=teleport", headers=h), 400)


@pytest.mark.parametrize(("version", "module"), LIVE)
async def test_server_migrations(api: httpx.AsyncClient, world: World, version: str,
                                 module: str) -> None:
    inst = add_instance(world, name=f"live-{version}")
    m = add_migration(inst)
    h = nova(world.admin, version)
    r = await api.get(f"{C}/servers/{inst.id}/migrations", headers=h)
    (row,) = check(r, f"{module}.servers", "list_live_migrations")["migrations"]
    assert (row["id"], row["server_uuid"], row["memory_total_bytes"]) == (m.id, inst.id, 400)
    r = await api.get(f"{C}/servers/{inst.id}/migrations/{m.id}", headers=h)
    item = schema(f"{module}.servers", "list_live_migrations")["response_body"][
        "properties"]["migrations"]["items"]
    assert r.status_code == 200  # Tempest has no show schema: the list's item, wrapped
    JSONSCHEMA_VALIDATOR({"type": "object", "properties": {"migration": item},
                          "required": ["migration"], "additionalProperties": False},
                         format_checker=FORMAT_CHECKER).validate(r.json())
    fault(await api.get(f"{C}/servers/{inst.id}/migrations/999999", headers=h), 404)
    fault(await api.get(f"{C}/servers/{inst.id}/migrations/x", headers=h), 404)


async def test_migration_actions(api: httpx.AsyncClient, world: World) -> None:
    inst = add_instance(world, name="live-actions")
    m = add_migration(inst)
    done = add_migration(inst, status="completed")
    h = nova(world.admin, "2.24")
    base = f"{C}/servers/{inst.id}/migrations"
    # no workflow holds the server: 409, nothing signalled
    fault(await api.delete(f"{base}/{m.id}", headers=h), 409)
    fault(await api.post(f"{base}/{m.id}/action", headers=h, json={"force_complete": None}),
          409)
    fault(await api.post(f"{base}/{done.id}/action", headers=h,
                         json={"force_complete": None}), 409)
    fault(await api.post(f"{base}/{m.id}/action", headers=h, json={"finish": None}), 400)
    fault(await api.delete(f"{base}/{m.id}", headers=nova(world.admin, "2.23")), 404)
    fault(await api.get(base, headers=nova(world.admin, "2.22")), 404)
    fault(await api.delete(f"{base}/{m.id}", headers=nova(world.alice, "2.24")), 403)
    fault(await api.get(f"{C}/servers/00000000-0000-4000-8000-000000000000/migrations",
                        headers=h), 404)

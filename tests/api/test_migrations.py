"""The migrations API (admin): os-migrateLive's checks, a server's live migrations in
progress, abort (DELETE) and force-complete (POST .../action) as signals to the
running LiveMigrateInstance, and os-migrations with its filters. No worker runs here,
so a started migration's workflow stays running and its signals stay in its history."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from tests.api.conftest import World, add_instance, counts, instance_row, session
from tests.api.test_auth import assert_error
from vmflow.models import Host, Instance, Migration
from vmflow.names import instance_workflow_id


@pytest.fixture(scope="module", autouse=True)
def two_hosts() -> None:
    with session() as s:
        for name in ("h1", "h2"):
            if s.get(Host, name) is None:
                s.add(Host(name=name, hostname=name, vcpus=8, ram_mb=16384, disk_gb=100))
        s.commit()


async def live_migrate(api: httpx.AsyncClient, h: dict[str, str], sid: str,
                       args: Any) -> httpx.Response:
    return await api.post(f"/v1/servers/{sid}/action", headers=h,
                          json={"os-migrateLive": args})


def add_migration(inst: Instance, status: str = "running", mtype: str = "live-migration",
                  operation_id: str | None = None, dest: str = "h2") -> Migration:
    m = Migration(instance_id=inst.id, project_id=inst.project_id, user_id=inst.user_id,
                  operation_id=operation_id, migration_type=mtype, status=status,
                  source_host=inst.host, dest_host=dest, memory_total=400,
                  memory_processed=100, disk_total=100, disk_processed=100)
    with session() as s:
        s.add(m)
        s.commit()
    return m


async def started(api: httpx.AsyncClient, world: World, name: str) -> tuple[Instance, str]:
    """A server whose live migration was accepted (its workflow runs, unserved)."""
    inst = add_instance(world, name=name)
    r = await live_migrate(api, world.admin.h, inst.id, {"host": "h2", "block_migration": "auto"})
    assert r.status_code == 202, r.text
    return inst, r.json()["operation"]["id"]


async def signals(temporal: Client, instance_id: str) -> list[str]:
    history = await temporal.get_workflow_handle(instance_workflow_id(instance_id)).fetch_history()
    return [e.workflow_execution_signaled_event_attributes.signal_name for e in history.events
            if e.HasField("workflow_execution_signaled_event_attributes")]


async def test_live_migrate_refuses_bad_bodies_and_hosts_changing_nothing(
        api: httpx.AsyncClient, world: World) -> None:
    inst = add_instance(world, name="lm-bad")
    before = counts()
    for args, kind in [({"host": "nowhere"}, "ComputeHostNotFound"),
                       ({"host": "h1"}, "InvalidHypervisorHost"),  # its own host
                       ({"block_migration": False}, "InvalidSharedStorage"),
                       ({"block_migration": "yes"}, None), ({"disk_over_commit": True}, None),
                       ({"host": 7}, None)]:
        r = await live_migrate(api, world.admin.h, inst.id, args)
        assert_error(r, 400, kind)
    assert counts() == before
    row = instance_row(inst.id)
    assert (row.vm_state, row.task_state, row.host) == ("active", None, "h1")


async def test_live_migrate_starts_the_workflow_with_its_request(
        api: httpx.AsyncClient, world: World, temporal: Client) -> None:
    inst, _ = await started(api, world, "lm-start")
    assert instance_row(inst.id).task_state == "migrating"
    handle = temporal.get_workflow_handle(instance_workflow_id(inst.id))
    desc = await handle.describe()
    assert desc.workflow_type == "LiveMigrateInstance"
    history = await handle.fetch_history()
    arg = json.loads(history.events[0].workflow_execution_started_event_attributes
                     .input.payloads[0].data)
    assert (arg["host"], arg["block_migration"]) == ("h2", True)
    # members may not live-migrate, and the running one holds the server: 409
    assert_error(await live_migrate(api, world.alice.h, inst.id, {}), 403)
    assert_error(await live_migrate(api, world.admin.h, inst.id, {}), 409)


async def test_server_migrations_show_live_ones_in_progress_only(
        api: httpx.AsyncClient, world: World) -> None:
    inst = add_instance(world, name="lm-list")
    running = add_migration(inst)
    add_migration(inst, status="completed")
    add_migration(inst, status="running", mtype="migration")
    r = await api.get(f"/v1/servers/{inst.id}/migrations", headers=world.admin.h)
    assert r.status_code == 200, r.text
    (shown,) = r.json()["migrations"]
    assert (shown["id"], shown["status"], shown["source_compute"], shown["dest_compute"],
            shown["migration_type"], shown["server_uuid"]) == (
        running.id, "running", "h1", "h2", "live-migration", inst.id)
    assert (shown["memory_total_bytes"], shown["disk_processed_bytes"], shown["progress"]) == (
        400, 100, 40)
    assert shown["created_at"] and shown["updated_at"]
    r = await api.get(f"/v1/servers/{inst.id}/migrations/{running.id}", headers=world.admin.h)
    assert r.status_code == 200 and r.json()["id"] == running.id


async def test_migrations_routes_are_admin_only_and_scoped_to_the_server(
        api: httpx.AsyncClient, world: World) -> None:
    inst = add_instance(world, name="lm-auth")
    other = add_instance(world, name="lm-auth-other", owner=world.bob)
    m = add_migration(inst)
    base = f"/v1/servers/{inst.id}/migrations"
    for method, path, body in [("GET", base, None), ("GET", f"{base}/{m.id}", None),
                               ("DELETE", f"{base}/{m.id}", None),
                               ("POST", f"{base}/{m.id}/action", {"force_complete": None}),
                               ("GET", "/v1/os-migrations", None)]:
        for who in (world.alice, world.bob, world.rita):
            r = await api.request(method, path, headers=who.h, json=body)
            assert_error(r, 403)
    # another server's migration, an unknown one, an unknown server: 404
    for path in (f"/v1/servers/{other.id}/migrations/{m.id}", f"{base}/999999",
                 "/v1/servers/nope/migrations"):
        assert_error(await api.get(path, headers=world.admin.h), 404)
    assert_error(await api.delete(f"/v1/servers/{other.id}/migrations/{m.id}",
                                  headers=world.admin.h), 404)
    with session() as s:
        assert s.get(Migration, m.id).status == "running"  # type: ignore[union-attr]


async def test_abort_and_force_complete_signal_the_running_workflow(
        api: httpx.AsyncClient, world: World, temporal: Client) -> None:
    inst, op_id = await started(api, world, "lm-signal")
    m = add_migration(inst, operation_id=op_id)
    base = f"/v1/servers/{inst.id}/migrations/{m.id}"
    r = await api.post(f"{base}/action", headers=world.admin.h, json={"force_complete": None})
    assert r.status_code == 202, r.text
    r = await api.delete(base, headers=world.admin.h)
    assert r.status_code == 202, r.text
    assert await signals(temporal, inst.id) == ["force_complete", "abort"]


async def test_abort_and_force_complete_refuse_what_is_not_running(
        api: httpx.AsyncClient, world: World, temporal: Client) -> None:
    inst, op_id = await started(api, world, "lm-refuse")
    base = f"/v1/servers/{inst.id}/migrations"
    done = add_migration(inst, status="completed", operation_id=op_id)
    preparing = add_migration(inst, status="preparing", operation_id=op_id)
    cold = add_migration(inst, status="migrating", mtype="migration", operation_id=op_id)
    assert_error(await api.delete(f"{base}/{done.id}", headers=world.admin.h), 409,
                 "InvalidMigrationState")
    assert_error(await api.post(f"{base}/{done.id}/action", headers=world.admin.h,
                                json={"force_complete": None}), 409)
    assert_error(await api.post(f"{base}/{preparing.id}/action", headers=world.admin.h,
                                json={"force_complete": None}), 409)
    assert_error(await api.delete(f"{base}/{cold.id}", headers=world.admin.h), 400,
                 "InvalidMigrationState")
    for body in ({}, {"force_complete": 1}, {"force_complete": None, "x": 1}, None):
        assert_error(await api.post(f"{base}/{preparing.id}/action", headers=world.admin.h,
                                    json=body), 400)
    # a running migration whose workflow is not running: nothing to signal
    idle = add_instance(world, name="lm-idle")
    orphan = add_migration(idle)
    assert_error(await api.delete(f"/v1/servers/{idle.id}/migrations/{orphan.id}",
                                  headers=world.admin.h), 409)
    assert await signals(temporal, inst.id) == []


async def test_os_migrations_lists_every_type_with_filters(
        api: httpx.AsyncClient, world: World) -> None:
    a = add_instance(world, name="om-a")
    b = add_instance(world, name="om-b")
    b.host = "h2"
    live = add_migration(a, status="completed")
    resize = add_migration(b, status="finished", mtype="resize", dest="h3")

    async def ids(**params: str) -> set[int]:
        r = await api.get("/v1/os-migrations", headers=world.admin.h, params=params)
        assert r.status_code == 200, r.text
        return {m["id"] for m in r.json()["migrations"]}

    assert {live.id, resize.id} <= await ids()
    assert await ids(instance_uuid=a.id) == {live.id}
    assert await ids(instance_uuid=b.id, migration_type="resize") == {resize.id}
    assert await ids(instance_uuid=b.id, migration_type="live-migration") == set()
    assert resize.id in await ids(host="h3") and live.id not in await ids(host="h3")
    assert await ids(instance_uuid=a.id, status="completed") == {live.id}
    r = await api.get("/v1/os-migrations", headers=world.admin.h,
                      params={"instance_uuid": a.id})
    assert r.json()["migrations"][0]["progress"] == 100  # completed
    for bad in ({"migration_type": "teleport"}, {"status": "nonsense"}, {"limit": "0"}):
        assert_error(await api.get("/v1/os-migrations", headers=world.admin.h, params=bad), 400)

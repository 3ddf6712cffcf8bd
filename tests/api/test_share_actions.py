"""Share actions over the real app: the state table (409 from every status an action
may not start from, the workflow of every allowed one), extend/shrink bounds,
delete, snapshots, reset_status, force_delete, Idempotency-Key and share types."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowExecutionStatus

from tests.api.conftest import Caller, World, session
from tests.api.test_auth import assert_error
from tests.api.test_server_actions import started_input
from tests.api.test_shares import (
    act,
    add_share,
    add_snapshot,
    end,
    ops_of,
    share_counts,
    share_row,
    shares_quota_lifted,
    status_of,
)
from vmflow.models import Share, ShareAccessRule, ShareSnapshot
from vmflow.share_states import SHARE_ACTIONS, ShareStatus


@pytest.fixture(scope="module", autouse=True)
async def roomy_p1(api: httpx.AsyncClient, world: World) -> AsyncIterator[None]:
    async with shares_quota_lifted(api, world):
        yield


# --- the state table: 409 from every status an action may not start from -------------

BODIES: dict[str, dict[str, Any]] = {
    "extend": {"extend": {"new_size": 9}},
    "shrink": {"shrink": {"new_size": 1}},
    "allow_access": {"allow_access": {"access_type": "ip", "access_to": "10.9.9.9"}},
}
DISALLOWED = [(a, s.value) for a in ("delete", "extend", "shrink", "allow_access",
                                     "deny_access", "snapshot")
              for s in ShareStatus if s not in SHARE_ACTIONS[a]]


async def request(api: httpx.AsyncClient, who: Caller, action: str,
                  share: Share) -> httpx.Response:
    if action == "delete":
        return await api.delete(f"/v1/shares/{share.id}", headers=who.h)
    if action == "snapshot":
        return await api.post("/v1/share-snapshots", headers=who.h,
                              json={"share_id": share.id, "name": "s"})
    if action == "deny_access":
        rule = ShareAccessRule(share_id=share.id, access_type="ip", access_to="10.8.8.8",
                               access_level="rw", state="active")
        with session() as s:
            s.add(rule)
            s.commit()
        return await act(api, who, share.id, {"deny_access": {"access_id": rule.id}})
    return await act(api, who, share.id, BODIES[action])


@pytest.mark.parametrize("action,status", DISALLOWED)
async def test_disallowed_status_is_409_and_changes_nothing(
        api: httpx.AsyncClient, world: World, temporal: Client, action: str,
        status: str) -> None:
    share = add_share(world.alice, status=status, size=4)
    before = share_counts()
    r = await request(api, world.admin, action, share)
    assert_error(r, 409, "InvalidShare")
    assert status in r.json()["error"]["message"]
    row = share_row(share.id)
    assert row is not None and (row.status, row.size_gb, row.access_rules_status) == (
        status, 4, "active")
    assert share_counts()[0:2] == before[0:2] and share_counts()[3] == before[3]
    assert await status_of(temporal, f"share-{share.id}") is None
    assert await status_of(temporal, f"share-{share.id}-access") is None


@pytest.mark.parametrize("action,workflow,status_after", [
    ("delete", "DeleteShare", "deleting"), ("extend", "ExtendShare", "extending"),
    ("shrink", "ShrinkShare", "shrinking"), ("snapshot", "CreateShareSnapshot", "available")])
async def test_allowed_action_starts_its_workflow_and_a_second_is_409(
        api: httpx.AsyncClient, world: World, temporal: Client, action: str, workflow: str,
        status_after: str) -> None:
    share = add_share(world.alice, size=4)
    r = await request(api, world.alice, action, share)
    assert r.status_code == 202, r.text
    assert r.json()["operation"]["workflow_id"] == f"share-{share.id}"
    desc = await temporal.get_workflow_handle(f"share-{share.id}").describe()
    assert desc.workflow_type == workflow
    assert (share_row(share.id) or share).status == status_after
    if action == "snapshot":
        # the share stays available, but its id is held: the next operation waits its turn
        before = share_counts()
        err = assert_error(await request(api, world.alice, "extend", share), 409, "Conflict")
        assert "snapshot_create" in err["message"]
        assert share_counts() == before
        assert (share_row(share.id) or share).status == "available"  # put back
        arg = await started_input(temporal, f"share-{share.id}")
        snap_id = r.json()["snapshot"]["id"]
        assert arg["snapshot_id"] == snap_id and arg["share_id"] == share.id
        with session() as s:
            assert (s.get(ShareSnapshot, snap_id) or share).status == "creating"
    await end(temporal, share.id)


async def test_resize_bounds(api: httpx.AsyncClient, world: World, temporal: Client) -> None:
    share = add_share(world.alice, size=4)
    for body in ({"extend": {"new_size": 4}}, {"extend": {"new_size": 3}},
                 {"shrink": {"new_size": 4}}, {"shrink": {"new_size": 5}},
                 {"shrink": {"new_size": 0}}, {"extend": {"new_size": "9"}},
                 {"extend": {}}, {"extend": {"new_size": 9}, "shrink": {"new_size": 1}},
                 {"grow": {"new_size": 9}}):
        r = await act(api, world.alice, share.id, body)
        assert r.status_code == 400, (body, r.text)
    assert (share_row(share.id) or share).status == "available"
    r = await act(api, world.alice, share.id, {"extend": {"new_size": 6}})
    assert r.status_code == 202, r.text
    arg = await started_input(temporal, f"share-{share.id}")
    assert (arg["new_size_gb"], arg["share_id"], arg["host"]) == (6, share.id, "st1")
    await end(temporal, share.id)


async def test_delete_refused_while_snapshots_exist(api: httpx.AsyncClient, world: World,
                                                    temporal: Client) -> None:
    share = add_share(world.alice)
    add_snapshot(share)
    for r in (await api.delete(f"/v1/shares/{share.id}", headers=world.alice.h),
              await act(api, world.admin, share.id, {"force_delete": None})):
        err = assert_error(r, 409, "InvalidShare")
        assert "1 dependent snapshots" in err["message"]
    assert await status_of(temporal, f"share-{share.id}") is None


async def test_snapshot_needs_snapshot_support(api: httpx.AsyncClient,
                                               world: World) -> None:
    r = await api.post("/v1/share-types", headers=world.admin.h,
                       json={"name": "nosnap", "extra_specs": {"snapshot_support": "False"}})
    assert r.status_code == 201, r.text
    share = add_share(world.alice, share_type_id=r.json()["id"])
    before = share_counts()
    err = assert_error(await api.post("/v1/share-snapshots", headers=world.alice.h,
                                      json={"share_id": share.id, "name": "s"}), 400,
                       "InvalidShare")
    assert "snapshot_support" in err["message"]
    assert share_counts() == before
    # a type in use cannot go
    assert_error(await api.delete(f"/v1/share-types/{r.json()['id']}",
                                  headers=world.admin.h), 409, "ShareTypeInUse")


async def test_snapshot_delete(api: httpx.AsyncClient, world: World, temporal: Client) -> None:
    share = add_share(world.alice)
    busy = add_snapshot(share, status="creating")
    assert_error(await api.delete(f"/v1/share-snapshots/{busy.id}", headers=world.alice.h),
                 409, "InvalidShareSnapshot")
    snap = add_snapshot(share)
    r = await api.delete(f"/v1/share-snapshots/{snap.id}", headers=world.alice.h)
    assert r.status_code == 202, r.text
    desc = await temporal.get_workflow_handle(f"share-{share.id}").describe()
    assert desc.workflow_type == "DeleteShareSnapshot"
    shown = await api.get(f"/v1/share-snapshots/{snap.id}", headers=world.alice.h)
    assert shown.json()["status"] == "deleting"
    await end(temporal, share.id)


# --- admin: reset_status and force_delete --------------------------------------------

async def test_reset_status_is_admin_only_and_audited(api: httpx.AsyncClient, world: World,
                                                      temporal: Client) -> None:
    share = add_share(world.alice, status="error")
    assert_error(await act(api, world.alice, share.id, {"reset_status": {"status": "available"}}),
                 403, "Forbidden")
    assert_error(await act(api, world.admin, share.id, {"reset_status": {"status": "fine"}}),
                 400, "InvalidInput")
    r = await act(api, world.admin, share.id, {"reset_status": {"status": "available"}})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "available"
    (op,) = ops_of(share.id)
    assert (op.action, op.status, op.last_error, op.workflow_id) == (
        "reset_status", "succeeded", "reset by admin from error to available", "")
    assert op.finished_at is not None

    # while an operation runs, resetting would be undone by it: 409
    assert (await act(api, world.alice, share.id, {"extend": {"new_size": 2}})).status_code == 202
    err = assert_error(await act(api, world.admin, share.id,
                                 {"reset_status": {"status": "error"}}), 409)
    assert "extend is running" in err["message"]
    assert (share_row(share.id) or share).status == "extending"
    await end(temporal, share.id)


async def test_force_delete_from_creating(api: httpx.AsyncClient, world: World,
                                          temporal: Client) -> None:
    r = await api.post("/v1/shares", headers=world.alice.h,
                       json={"share_proto": "NFS", "size": 1, "name": "stuck"})
    assert r.status_code == 202, r.text
    share_id, create_op = r.json()["share"]["id"], r.json()["operation"]["id"]
    create_run = (await temporal.get_workflow_handle(f"share-{share_id}").describe()).run_id
    # members may not; a plain delete is refused by the status
    assert_error(await act(api, world.alice, share_id, {"force_delete": None}), 403)
    assert_error(await api.delete(f"/v1/shares/{share_id}", headers=world.admin.h), 409)

    r = await act(api, world.admin, share_id, {"force_delete": None})
    assert r.status_code == 202, r.text
    op = r.json()["operation"]
    assert op["workflow_id"] == f"share-{share_id}"
    old = await temporal.get_workflow_handle(f"share-{share_id}", run_id=create_run).describe()
    assert old.status == WorkflowExecutionStatus.TERMINATED
    new = await temporal.get_workflow_handle(f"share-{share_id}").describe()
    assert (new.workflow_type, new.status) == ("DeleteShare", WorkflowExecutionStatus.RUNNING)
    arg = await started_input(temporal, f"share-{share_id}")
    assert (arg["force"], arg["operation_id"]) == (True, op["id"])
    by_id = {o.id: o for o in ops_of(share_id)}
    assert (by_id[create_op].status, by_id[create_op].last_error) == (
        "failed", "terminated by force_delete")
    assert (by_id[op["id"]].action, by_id[op["id"]].status) == ("force_delete", "running")
    assert (share_row(share_id) or Share()).status == "deleting"
    await end(temporal, share_id)


async def test_idempotency_key_replays_create(api: httpx.AsyncClient, world: World,
                                              temporal: Client) -> None:
    h = {**world.alice.h, "Idempotency-Key": "share-create-1"}
    body = {"share_proto": "NFS", "size": 1, "name": "once"}
    first = await api.post("/v1/shares", headers=h, json=body)
    again = await api.post("/v1/shares", headers=h, json=body)
    assert first.status_code == again.status_code == 202
    assert first.json()["share"]["id"] == again.json()["share"]["id"]
    assert first.json()["operation"]["id"] == again.json()["operation"]["id"]
    await end(temporal, first.json()["share"]["id"])


# --- share types ---------------------------------------------------------------------

async def test_share_types(api: httpx.AsyncClient, world: World) -> None:
    types = (await api.get("/v1/share-types", headers=world.alice.h)).json()["share_types"]
    default = next(t for t in types if t["name"] == "default")
    assert default["extra_specs"] == {"snapshot_support": "True",
                                      "driver_handles_share_servers": "False"}
    body = {"name": "gold", "extra_specs": {"snapshot_support": "True"}}
    assert_error(await api.post("/v1/share-types", headers=world.alice.h, json=body), 403)
    assert_error(await api.post("/v1/share-types", headers=world.admin.h, json={
        "name": "bad", "extra_specs": {"snapshot_support": "maybe"}}), 400)
    r = await api.post("/v1/share-types", headers=world.admin.h, json=body)
    assert r.status_code == 201, r.text
    assert_error(await api.post("/v1/share-types", headers=world.admin.h, json=body), 409,
                 "ShareTypeExists")
    assert_error(await api.delete(f"/v1/share-types/{r.json()['id']}", headers=world.alice.h),
                 403)
    assert (await api.delete(f"/v1/share-types/{r.json()['id']}",
                             headers=world.admin.h)).status_code == 204
    assert_error(await api.get(f"/v1/share-types/{r.json()['id']}", headers=world.admin.h),
                 404)

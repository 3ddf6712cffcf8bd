"""Shares over the real app, a real Temporal dev server (no worker: started workflows
stay Running) and SQLite: create, show, list, roles and project scoping. The state
table, extend/shrink, delete, snapshots, reset_status, force_delete and share types
are in test_share_actions.py; both use the helpers here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import select
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from tests.api.conftest import Caller, World, session
from tests.api.test_auth import assert_error
from tests.api.test_server_actions import started_input
from vmflow.models import Operation, Share, ShareAccessRule, ShareSnapshot, ShareType
from vmflow.names import SA_OPERATION, SA_PROJECT, SA_RESOURCE

# --- helpers (also used by test_share_access and test_share_quotas) -------------------


def default_type_id() -> str:
    with session() as s:
        return s.exec(select(ShareType).where(ShareType.name == "default")).one().id


def add_share(owner: Caller, status: str = "available", size: int = 1,
              name: str = "row-share", **fields: Any) -> Share:
    """A share row as a finished create leaves it (no workflow running)."""
    share = Share(name=name, project_id=owner.project_id, user_id=owner.user_id, size_gb=size,
                  share_type_id=fields.pop("share_type_id", default_type_id()), host="st1",
                  status=status, export_locations=["127.0.0.1:/shares/x"], **fields)
    with session() as s:
        s.add(share)
        s.commit()
    return share


def add_snapshot(share: Share, status: str = "available") -> ShareSnapshot:
    snap = ShareSnapshot(share_id=share.id, project_id=share.project_id, user_id=share.user_id,
                         name="row-snap", size_gb=share.size_gb, status=status)
    with session() as s:
        s.add(snap)
        s.commit()
    return snap


def share_row(share_id: str) -> Share | None:
    with session() as s:
        return s.get(Share, share_id)


def share_counts() -> tuple[int, ...]:
    """(shares, snapshots, rules, operations): a refused request changes none."""
    with session() as s:
        return tuple(s.exec(select(func.count()).select_from(t)).one()
                     for t in (Share, ShareSnapshot, ShareAccessRule, Operation))


def ops_of(resource_id: str) -> list[Operation]:
    with session() as s:
        return list(s.exec(select(Operation).where(Operation.resource_id == resource_id)))


async def status_of(temporal: Client, workflow_id: str) -> WorkflowExecutionStatus | None:
    try:
        return (await temporal.get_workflow_handle(workflow_id).describe()).status
    except RPCError as e:
        assert e.status == RPCStatusCode.NOT_FOUND
        return None


async def end(temporal: Client, share_id: str) -> None:
    """Terminate what the API started on the share (no worker runs it)."""
    await temporal.get_workflow_handle(f"share-{share_id}").terminate(reason="test")


async def act(api: httpx.AsyncClient, who: Caller, share_id: str,
              body: dict[str, Any]) -> httpx.Response:
    return await api.post(f"/v1/shares/{share_id}/action", headers=who.h, json=body)


@asynccontextmanager
async def shares_quota_lifted(api: httpx.AsyncClient, world: World) -> AsyncIterator[None]:
    """The state matrix inserts many share rows into p1: lift its shares quota while
    a module runs (quotas have their own project in test_share_quotas)."""
    path = f"/v1/quota-sets/{world.alice.project_id}"
    old = (await api.get(path, headers=world.admin.h)).json()["quota_set"]["shares"]["limit"]
    assert (await api.put(path, headers=world.admin.h, json={"shares": -1})).status_code == 200
    yield
    assert (await api.put(path, headers=world.admin.h, json={"shares": old})).status_code == 200


@pytest.fixture(scope="module", autouse=True)
async def roomy_p1(api: httpx.AsyncClient, world: World) -> AsyncIterator[None]:
    async with shares_quota_lifted(api, world):
        yield


# --- create, show, list --------------------------------------------------------------

async def test_create_starts_create_share(api: httpx.AsyncClient, world: World,
                                          temporal: Client,
                                          vmflow_home: Any) -> None:
    r = await api.post("/v1/shares", headers=world.alice.h,
                       json={"share_proto": "nfs", "size": 2, "name": "data"})
    assert r.status_code == 202, r.text
    body = r.json()
    share, op = body["share"], body["operation"]
    assert (share["status"], share["size"], share["share_proto"], share["share_type_name"],
            share["access_rules_status"], share["export_locations"], share["host"]) == (
        "creating", 2, "NFS", "default", "active", [], None)  # host: admins only
    assert op["workflow_id"] == f"share-{share['id']}" and op["status"] == "running"
    row = share_row(share["id"])
    assert row is not None and row.host == vmflow_home.storage_name
    assert row.project_id == world.alice.project_id

    desc = await temporal.get_workflow_handle(f"share-{share['id']}").describe()
    assert (desc.workflow_type, desc.status, desc.task_queue) == (
        "CreateShare", WorkflowExecutionStatus.RUNNING, "control")
    sa = desc.typed_search_attributes
    assert (sa.get(SA_RESOURCE), sa.get(SA_PROJECT), sa.get(SA_OPERATION)) == (
        f"share-{share['id']}", world.alice.project_id, "create")
    assert await started_input(temporal, f"share-{share['id']}") == {
        "share_id": share["id"], "operation_id": op["id"], "host": vmflow_home.storage_name,
        "size_gb": 2, "snapshot_id": None, "force": False}

    shown = (await api.get(f"/v1/shares/{share['id']}", headers=world.admin.h)).json()
    assert shown["host"] == vmflow_home.storage_name  # the admin sees the host
    listed = (await api.get("/v1/shares", headers=world.alice.h)).json()["shares"]
    assert share["id"] in [s["id"] for s in listed]
    assert all(s["project_id"] == world.alice.project_id for s in listed)

    # one operation at a time: a delete now is refused by the status, an extend too
    assert_error(await api.delete(f"/v1/shares/{share['id']}", headers=world.alice.h), 409,
                 "InvalidShare")
    await end(temporal, share["id"])


@pytest.mark.parametrize("body,type_", [
    ({"share_proto": "CIFS", "size": 1, "name": "x"}, "InvalidShareProto"),
    ({"share_proto": "NFS", "size": 0, "name": "x"}, "ValidationError"),
    ({"share_proto": "NFS", "size": "1", "name": "x"}, "ValidationError"),
    ({"share_proto": "NFS", "name": "x"}, "InvalidInput"),
    ({"share_proto": "NFS", "size": 1, "name": "x", "share_type": "nope"},
     "ShareTypeNotFound"),
    ({"share_proto": "NFS", "size": 1, "name": "x", "snapshot_id": "nope"},
     "ShareSnapshotNotFound"),
    ({"share_proto": "NFS", "size": 1, "name": "x", "bogus": 1}, "ValidationError"),
])
async def test_bad_create_is_400_and_creates_nothing(api: httpx.AsyncClient, world: World,
                                                     body: dict[str, Any], type_: str) -> None:
    before = share_counts()
    assert_error(await api.post("/v1/shares", headers=world.alice.h, json=body), 400, type_)
    assert share_counts() == before


async def test_create_from_snapshot(api: httpx.AsyncClient, world: World,
                                    temporal: Client) -> None:
    source = add_share(world.alice, size=3)
    snap = add_snapshot(source)
    base = {"share_proto": "NFS", "name": "copy", "snapshot_id": snap.id}
    assert_error(await api.post("/v1/shares", headers=world.alice.h, json={**base, "size": 2}),
                 400, "InvalidInput")  # smaller than the snapshot
    assert_error(await api.post("/v1/shares", headers=world.bob.h, json=base), 400,
                 "ShareSnapshotNotFound")  # another project's snapshot is not there
    unready = add_snapshot(source, status="creating")
    assert_error(await api.post("/v1/shares", headers=world.alice.h,
                                json={**base, "snapshot_id": unready.id}), 400,
                 "InvalidShareSnapshot")
    r = await api.post("/v1/shares", headers=world.alice.h, json=base)
    assert r.status_code == 202, r.text
    share = r.json()["share"]
    assert (share["size"], share["snapshot_id"]) == (3, snap.id)  # the snapshot's size
    arg = await started_input(temporal, f"share-{share['id']}")
    assert (arg["snapshot_id"], arg["size_gb"]) == (snap.id, 3)
    await end(temporal, share["id"])


async def test_other_project_sees_nothing(api: httpx.AsyncClient, world: World) -> None:
    share = add_share(world.alice)
    snap = add_snapshot(share)
    before = share_counts()
    for r in (await api.get(f"/v1/shares/{share.id}", headers=world.bob.h),
              await api.delete(f"/v1/shares/{share.id}", headers=world.bob.h),
              await act(api, world.bob, share.id, {"extend": {"new_size": 5}}),
              await act(api, world.bob, share.id, {"allow_access": {
                  "access_type": "ip", "access_to": "10.0.0.9"}}),
              await api.get(f"/v1/shares/{share.id}/access-rules", headers=world.bob.h),
              await api.post("/v1/share-snapshots", headers=world.bob.h,
                             json={"share_id": share.id, "name": "s"}),
              await api.get(f"/v1/share-snapshots/{snap.id}", headers=world.bob.h),
              await api.delete(f"/v1/share-snapshots/{snap.id}", headers=world.bob.h),
              await api.get(f"/v1/quota-sets/{world.alice.project_id}", headers=world.bob.h)):
        assert_error(r, 404, "NotFound")
    assert share.id not in [s["id"] for s in (await api.get(
        "/v1/shares", headers=world.bob.h)).json()["shares"]]
    assert snap.id not in [s["id"] for s in (await api.get(
        "/v1/share-snapshots", headers=world.bob.h)).json()["snapshots"]]
    assert share_counts() == before
    assert (share_row(share.id) or share).status == "available"


async def test_reader_reads_but_may_not_change(api: httpx.AsyncClient, world: World) -> None:
    share = add_share(world.alice)
    assert (await api.get(f"/v1/shares/{share.id}", headers=world.rita.h)).status_code == 200
    before = share_counts()
    for r in (await api.post("/v1/shares", headers=world.rita.h,
                             json={"share_proto": "NFS", "size": 1, "name": "r"}),
              await api.delete(f"/v1/shares/{share.id}", headers=world.rita.h),
              await act(api, world.rita, share.id, {"shrink": {"new_size": 1}}),
              await act(api, world.rita, share.id, {"allow_access": {
                  "access_type": "ip", "access_to": "10.0.0.9"}}),
              await api.post("/v1/share-snapshots", headers=world.rita.h,
                             json={"share_id": share.id, "name": "s"})):
        assert_error(r, 403, "Forbidden")
    assert share_counts() == before


async def test_service_role_reaches_no_share_route(api: httpx.AsyncClient, world: World,
                                                   vmflow_home: Any) -> None:
    service = {"Authorization": f"Bearer {vmflow_home.service_token_file.read_text().strip()}"}
    share = add_share(world.alice)
    for method, path in (("GET", "/v1/shares"), ("GET", f"/v1/shares/{share.id}"),
                         ("DELETE", f"/v1/shares/{share.id}"),
                         ("GET", f"/v1/shares/{share.id}/access-rules"),
                         ("GET", "/v1/share-snapshots"), ("GET", "/v1/share-types"),
                         ("GET", f"/v1/quota-sets/{world.alice.project_id}")):
        assert_error(await api.request(method, path, headers=service), 403, "Forbidden")

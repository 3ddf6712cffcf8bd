"""Share quotas (Manila's quota-sets): limits and in-use per project, 413 with Manila's
error names when a create, extend or snapshot would go over, and nothing created."""

from __future__ import annotations

import httpx
import pytest
from temporalio.client import Client

from tests.api.conftest import Caller, World, make_caller
from tests.api.test_auth import assert_error
from tests.api.test_shares import act, add_share, add_snapshot, end, share_counts, share_row


@pytest.fixture(scope="module")
async def quinn(api: httpx.AsyncClient, world: World) -> Caller:
    """A member of a project of its own, so other tests' shares do not count."""
    r = await api.post("/v1/projects", headers=world.admin.h, json={"name": "pq"})
    assert r.status_code == 201, r.text
    return await make_caller(api, world.admin.h, "quinn", "pq", "member")


async def quota_set(api: httpx.AsyncClient, who: Caller,
                    project: str) -> dict[str, dict[str, int]]:
    r = await api.get(f"/v1/quota-sets/{project}", headers=who.h)
    assert r.status_code == 200, r.text
    body: dict[str, dict[str, int]] = r.json()["quota_set"]
    return body


async def set_quota(api: httpx.AsyncClient, admin: Caller, project: str, **limits: int) -> None:
    r = await api.put(f"/v1/quota-sets/{project}", headers=admin.h, json=limits)
    assert r.status_code == 200, r.text


async def test_defaults_and_usage(api: httpx.AsyncClient, world: World, quinn: Caller,
                                  vmflow_home: object) -> None:
    q = await quota_set(api, quinn, quinn.project_id)
    assert q["id"] == quinn.project_id
    assert {k: v for k, v in q.items() if k != "id"} == {
        "shares": {"limit": 50, "in_use": 0, "reserved": 0},
        "gigabytes": {"limit": 1000, "in_use": 0, "reserved": 0},
        "snapshots": {"limit": 50, "in_use": 0, "reserved": 0},
        "snapshot_gigabytes": {"limit": 1000, "in_use": 0, "reserved": 0},
        # Nova's and Neutron's, unlimited by default (tests/api/test_compute_quotas.py)
        "instances": {"limit": -1, "in_use": 0, "reserved": 0},
        "cores": {"limit": -1, "in_use": 0, "reserved": 0},
        "ram": {"limit": -1, "in_use": 0, "reserved": 0},
        "floating_ips": {"limit": -1, "in_use": 0, "reserved": 0}}
    share = add_share(quinn, size=3)
    add_snapshot(share)
    q = await quota_set(api, world.admin, quinn.project_id)
    assert (q["shares"]["in_use"], q["gigabytes"]["in_use"], q["snapshots"]["in_use"],
            q["snapshot_gigabytes"]["in_use"]) == (1, 3, 1, 3)


async def test_only_admins_set_quotas(api: httpx.AsyncClient, world: World,
                                      quinn: Caller) -> None:
    path = f"/v1/quota-sets/{quinn.project_id}"
    assert_error(await api.put(path, headers=quinn.h, json={"shares": 999}), 403)
    assert_error(await api.put(path, headers=world.admin.h, json={"shares": -2}), 400)
    assert_error(await api.put(path, headers=world.admin.h, json={"volumes": 1}), 400)
    assert_error(await api.put("/v1/quota-sets/nope", headers=world.admin.h,
                               json={"shares": 1}), 404)
    assert (await quota_set(api, quinn, quinn.project_id))["shares"]["limit"] == 50


async def test_share_count_and_gigabytes_are_413(api: httpx.AsyncClient, world: World,
                                                 quinn: Caller, temporal: Client) -> None:
    used = (await quota_set(api, quinn, quinn.project_id))
    n, gb = used["shares"]["in_use"], used["gigabytes"]["in_use"]
    await set_quota(api, world.admin, quinn.project_id, shares=n + 1, gigabytes=gb + 5)
    body = {"share_proto": "NFS", "name": "q", "size": 6}
    before = share_counts()
    err = assert_error(await api.post("/v1/shares", headers=quinn.h, json=body), 413,
                       "ShareSizeExceedsAvailableQuota")
    assert "exceeds allowed project/user or share type gigabytes quota" in err["message"]
    assert share_counts() == before
    r = await api.post("/v1/shares", headers=quinn.h, json={**body, "size": 5})  # exactly fits
    assert r.status_code == 202, r.text
    created = r.json()["share"]["id"]
    err = assert_error(await api.post("/v1/shares", headers=quinn.h, json={**body, "size": 1}),
                       413, "ShareLimitExceeded")
    assert err["message"] == f"Maximum number of shares allowed ({n + 1}) exceeded."
    # only the accepted create's share and operation rows were added
    assert share_counts() == (before[0] + 1, before[1], before[2], before[3] + 1)
    await end(temporal, created)

    # extend asks for the difference
    await set_quota(api, world.admin, quinn.project_id, shares=-1, gigabytes=gb + 5 + 2)
    share = add_share(quinn, size=1)  # uses 1 of the 2 left
    assert_error(await act(api, quinn, share.id, {"extend": {"new_size": 3}}), 413,
                 "ShareSizeExceedsAvailableQuota")
    assert (share_row(share.id) or share).status == "available"
    assert (await act(api, quinn, share.id, {"extend": {"new_size": 2}})).status_code == 202
    await end(temporal, share.id)
    await set_quota(api, world.admin, quinn.project_id, shares=50, gigabytes=1000)


async def test_an_extend_in_flight_reserves_its_gigabytes(
        api: httpx.AsyncClient, world: World, quinn: Caller, temporal: Client) -> None:
    """Two extends of two shares cannot together pass the quota: what the first asks
    for is reserved (and shown as such) until it ends; nothing changes for the second."""
    q = (await quota_set(api, quinn, quinn.project_id))["gigabytes"]
    gb, held = q["in_use"], q["reserved"]  # earlier tests' extends never ended
    a, b = add_share(quinn, size=1), add_share(quinn, size=1)
    await set_quota(api, world.admin, quinn.project_id, shares=-1,
                    gigabytes=gb + held + 2 + 2)
    assert (await act(api, quinn, a.id, {"extend": {"new_size": 3}})).status_code == 202
    q = (await quota_set(api, quinn, quinn.project_id))["gigabytes"]
    assert (q["in_use"], q["reserved"]) == (gb + 2, held + 2)
    assert_error(await act(api, quinn, b.id, {"extend": {"new_size": 2}}), 413,
                 "ShareSizeExceedsAvailableQuota")
    row = share_row(b.id)
    assert row is not None and (row.status, row.size_gb, row.extending_to_gb) == (
        "available", 1, None)
    # the first extend ends (here its workflow is terminated and an admin resets the
    # status): nothing is reserved any more and the second one fits
    await end(temporal, a.id)
    r = await act(api, world.admin, a.id, {"reset_status": {"status": "available"}})
    assert r.status_code == 200, r.text
    assert (await quota_set(api, quinn, quinn.project_id))["gigabytes"]["reserved"] == held
    assert (await act(api, quinn, b.id, {"extend": {"new_size": 3}})).status_code == 202
    await end(temporal, b.id)
    await set_quota(api, world.admin, quinn.project_id, shares=50, gigabytes=1000)


async def test_snapshot_quotas_are_413(api: httpx.AsyncClient, world: World, quinn: Caller,
                                       temporal: Client) -> None:
    share = add_share(quinn, size=4)
    q = await quota_set(api, quinn, quinn.project_id)
    snaps, snap_gb = q["snapshots"]["in_use"], q["snapshot_gigabytes"]["in_use"]
    await set_quota(api, world.admin, quinn.project_id, snapshot_gigabytes=snap_gb + 3)
    before = share_counts()
    assert_error(await api.post("/v1/share-snapshots", headers=quinn.h,
                                json={"share_id": share.id, "name": "s"}), 413,
                 "SnapshotSizeExceedsAvailableQuota")
    await set_quota(api, world.admin, quinn.project_id, snapshot_gigabytes=-1, snapshots=snaps)
    err = assert_error(await api.post("/v1/share-snapshots", headers=quinn.h,
                                      json={"share_id": share.id, "name": "s"}), 413,
                       "SnapshotLimitExceeded")
    assert err["message"] == f"Maximum number of snapshots allowed ({snaps}) exceeded."
    assert share_counts() == before
    await set_quota(api, world.admin, quinn.project_id, snapshots=-1)
    r = await api.post("/v1/share-snapshots", headers=quinn.h,
                       json={"share_id": share.id, "name": "s"})
    assert r.status_code == 202, r.text
    await end(temporal, share.id)
    await set_quota(api, world.admin, quinn.project_id, snapshots=50, snapshot_gigabytes=1000)

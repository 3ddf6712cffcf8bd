"""Shares end to end: the stack's storage worker, btrfs pool and nfs-ganesha, driven
through the API and checked with real NFS traffic from network namespaces (libnfs
clients with their own addresses: tests/nfs_clients.py)."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.conftest import wait_operation
from tests.nfs_clients import (
    NfsError,
    nfs_clients,
    nfs_copy,
    nfs_ls,
    nfs_read,
    nfs_url,
    nfs_write,
)
from vmflow import ganesha_config, hostbed, stack, stack_storage, storage_netns
from vmflow.settings import Settings

WRITER, READER, STRANGER = "10.254.0.4", "10.254.0.5", "10.254.0.6"
SETTLED = {"active", "error"}


@pytest.fixture(scope="module")
def ns(it_settings: Settings) -> Iterator[dict[str, str]]:
    with nfs_clients([WRITER, READER, STRANGER], storage_netns.name(it_settings)) as namespaces:
        yield namespaces


def create_share(api: httpx.Client, name: str, size: int) -> tuple[str, str]:
    r = api.post("/v1/shares", json={"share_proto": "NFS", "size": size, "name": name})
    assert r.status_code == 202, r.text
    return r.json()["share"]["id"], r.json()["operation"]["id"]


def share_action(api: httpx.Client, share_id: str, body: dict[str, Any]) -> httpx.Response:
    return api.post(f"/v1/shares/{share_id}/action", json=body)


def resize(api: httpx.Client, share_id: str, verb: str, size: int) -> dict[str, Any]:
    r = share_action(api, share_id, {verb: {"new_size": size}})
    assert r.status_code == 202, r.text
    return wait_operation(api, r.json()["operation"]["id"])


def rules(api: httpx.Client, share_id: str) -> list[dict[str, Any]]:
    r = api.get(f"/v1/shares/{share_id}/access-rules")
    assert r.status_code == 200, r.text
    listed: list[dict[str, Any]] = r.json()["access_list"]
    return listed


def wait_rules(api: httpx.Client, share_id: str, timeout: float = 60) -> list[dict[str, Any]]:
    """Until no rule is on its way (queued, applying, denying) and the share agrees."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = rules(api, share_id)
        share = api.get(f"/v1/shares/{share_id}").json()
        if all(r["state"] in SETTLED for r in now) and share["access_rules_status"] != "syncing":
            return now
        time.sleep(0.3)
    raise AssertionError(f"rules of {share_id} still moving: {rules(api, share_id)}")


def allow(api: httpx.Client, share_id: str, to: str, level: str) -> str:
    r = share_action(api, share_id, {"allow_access": {
        "access_type": "ip", "access_to": to, "access_level": level}})
    assert r.status_code == 200, r.text
    rule_id: str = r.json()["access"]["id"]
    return rule_id


def nfs_copy_sparse(namespace: str, url: str, size: int) -> None:
    """nfs-cp of a sparse local file of `size` bytes (zeros: real data on the share)."""
    fd, local = tempfile.mkstemp(prefix="vmft-big-")
    try:
        os.ftruncate(fd, size)
        os.close(fd)
        nfs_copy(namespace, local, url)
    finally:
        os.unlink(local)


def backend_remains(s: Settings, share_id: str) -> dict[str, bool]:
    d = s.storage_dir
    return {"mount": (d / "exports" / share_id).exists(),
            "export file": (d / "ganesha" / "exports" / f"{share_id}.conf").exists(),
            "subvolume": (d / "pool" / "shares" / share_id).exists()}


GONE = {"mount": False, "export file": False, "subvolume": False}


def test_access_rules_size_limit_and_restart_over_real_nfs(
        api: httpx.Client, it_settings: Settings, ns: dict[str, str]) -> None:
    share_id, op_id = create_share(api, "it-share", 1)
    assert wait_operation(api, op_id)["status"] == "succeeded"
    share = api.get(f"/v1/shares/{share_id}").json()
    assert share["status"] == "available" and share["access_rules_status"] == "active"
    address, path = share["export_locations"][0].split(":", 1)
    assert address == it_settings.nfs_address and share_id in path
    url = nfs_url(path)
    with pytest.raises(NfsError):  # exported, but nobody is allowed yet
        nfs_ls(ns[WRITER], url)

    # two requests back to back queue on one reconcile instead of racing
    writer_rule, reader_rule = allow(api, share_id, WRITER, "rw"), allow(api, share_id,
                                                                         READER, "ro")
    settled = {r["id"]: r for r in wait_rules(api, share_id)}
    assert {settled[writer_rule]["state"], settled[reader_rule]["state"]} == {"active"}
    assert api.get(f"/v1/shares/{share_id}").json()["access_rules_status"] == "active"

    nfs_write(ns[WRITER], nfs_url(path, "hello.txt"), b"written by .4\n")
    assert nfs_read(ns[READER], nfs_url(path, "hello.txt")) == b"written by .4\n"
    with pytest.raises(NfsError):  # read-only for .5
        nfs_write(ns[READER], nfs_url(path, "nope.txt"), b"x")
    with pytest.raises(NfsError):  # no rule at all for .6
        nfs_ls(ns[STRANGER], url)

    # the qgroup limit is the share size: writing past 1 GiB fails, over NFS too
    with pytest.raises(NfsError):
        nfs_copy_sparse(ns[WRITER], nfs_url(path, "big-1"), (1 << 30) + (128 << 20))
    assert resize(api, share_id, "extend", 2)["status"] == "succeeded"
    assert api.get(f"/v1/shares/{share_id}").json()["size"] == 2
    nfs_copy_sparse(ns[WRITER], nfs_url(path, "big-2"), 512 << 20)  # fits now
    shrunk = resize(api, share_id, "shrink", 1)  # below what the share holds
    assert shrunk["status"] in ("failed", "compensated"), shrunk
    after = api.get(f"/v1/shares/{share_id}").json()
    assert (after["status"], after["size"]) == ("available", 2)

    # deny removes access at once; the reader keeps its own
    r = share_action(api, share_id, {"deny_access": {"access_id": writer_rule}})
    assert r.status_code in (200, 202), r.text
    left = wait_rules(api, share_id)
    assert [x["id"] for x in left] == [reader_rule]
    with pytest.raises(NfsError):
        nfs_ls(ns[WRITER], url)
    assert nfs_read(ns[READER], nfs_url(path, "hello.txt")) == b"written by .4\n"

    # a ganesha restart keeps every export and rule (its config includes them)
    assert stack.kill_component(it_settings, "ganesha") is not None
    stack.up(it_settings)
    assert nfs_read(ns[READER], nfs_url(path, "hello.txt")) == b"written by .4\n"
    with pytest.raises(NfsError):
        nfs_write(ns[READER], nfs_url(path, "still-ro.txt"), b"x")
    with pytest.raises(NfsError):
        nfs_ls(ns[WRITER], url)

    r = api.delete(f"/v1/shares/{share_id}")
    assert r.status_code == 202, r.text
    assert wait_operation(api, r.json()["operation"]["id"])["status"] == "succeeded"
    assert api.get(f"/v1/shares/{share_id}").status_code == 404
    assert backend_remains(it_settings, share_id) == GONE
    with pytest.raises(NfsError):
        nfs_ls(ns[READER], url)


def test_force_delete_of_a_share_stuck_in_creating(api: httpx.Client,
                                                   it_settings: Settings) -> None:
    assert stack.kill_component(it_settings, "storage") is not None
    try:
        share_id, create_op = create_share(api, "it-stuck", 1)
        time.sleep(1)
        assert api.get(f"/v1/shares/{share_id}").json()["status"] == "creating"
        r = share_action(api, share_id, {"force_delete": None})
        assert r.status_code == 202, r.text
        delete_op = r.json()["operation"]["id"]
    finally:
        stack.up(it_settings)  # the storage worker back: the delete reaches the backend
    assert wait_operation(api, delete_op)["status"] == "succeeded"
    assert api.get(f"/v1/shares/{share_id}").status_code == 404
    assert wait_operation(api, create_op)["status"] != "running"
    assert backend_remains(it_settings, share_id) == GONE


def test_ganesha_serves_the_hosts_underlay_from_its_own_namespace(
        api: httpx.Client, it_settings: Settings) -> None:
    """Nothing listens for NFS in the machine's own namespace; a host's namespace
    (where guest networks live) mounts a share at the export location's address."""
    pid = stack.pid_of(it_settings, "ganesha")
    assert pid is not None
    assert pid in stack_storage.port_listeners(ganesha_config.NFS_PORT, it_settings)
    assert pid not in stack_storage.port_listeners(ganesha_config.NFS_PORT)
    assert it_settings.nfs_address == storage_netns.ADDRESS
    assert storage_netns.ADDRESS in storage_netns.addresses(it_settings)

    share_id, op_id = create_share(api, "it-underlay", 1)
    assert wait_operation(api, op_id)["status"] == "succeeded"
    address, path = api.get(f"/v1/shares/{share_id}").json()["export_locations"][0].split(":", 1)
    host = hostbed.host(it_settings, it_settings.host)
    allow(api, share_id, host.address, "rw")
    assert {r["state"] for r in wait_rules(api, share_id)} == {"active"}
    for version in (3, 4):
        url = f"nfs://{address}{path}/from-{host.name}-v{version}.txt"
        url += "?version=4" if version == 4 else ""
        nfs_write(host.netns, url, b"over the underlay\n")
        assert nfs_read(host.netns, url) == b"over the underlay\n"
    r = api.delete(f"/v1/shares/{share_id}")
    assert r.status_code == 202, r.text
    wait_operation(api, r.json()["operation"]["id"])

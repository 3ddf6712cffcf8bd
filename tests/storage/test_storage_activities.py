"""The storage activities end to end, as the storage worker runs them: a real btrfs
pool, a real nfs-ganesha in the storage network namespace (started by the stack's own
functions on a temporary home) and libnfs clients in network namespaces bridged into
it (tests/nfs_clients.py): 10.254.0.4 gets rw,
10.254.0.5 ro, 10.254.0.6 no rule. Activities run in Temporal's ActivityEnvironment
(the activity context, heartbeats included, without a server)."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from activities.storage.ganesha import GaneshaExports
from activities.storage.share_pool import GIB
from activities.storage.shares import StorageActivities
from tests.home_cleanup import teardown_home
from tests.nfs_clients import (
    SERVER,
    NfsError,
    nfs_clients,
    nfs_ls,
    nfs_read,
    nfs_url,
    nfs_write,
)
from vmflow import stack, storage_netns
from vmflow.contracts.shares import (
    AccessRuleSpec,
    ApplyAccess,
    ShareResize,
    ShareSpec,
    SnapshotSpec,
)
from vmflow.settings import Settings

RW, RO, NONE = "10.254.0.4", "10.254.0.5", "10.254.0.6"
MIB = 1 << 20


@pytest.fixture(scope="module")
def acts() -> Iterator[StorageActivities]:
    # short: the bus socket's path must fit a unix socket address
    home = Path(tempfile.mkdtemp(prefix="vmflow-sa-", dir="/var/tmp"))
    s = Settings(home=home, host="unused", storage_host="satest", nfs_address=SERVER,
                 share_pool_gb=4)
    try:
        stack.ensure_component(s, "ganesha-dbus")
        stack.ensure_component(s, "ganesha")
        a = StorageActivities(s, GaneshaExports(s))
        a.pool.ensure()
        yield a
    finally:
        stack.stop_storage(s)
        teardown_home(home)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def ns(acts: StorageActivities) -> Iterator[dict[str, str]]:
    with nfs_clients([RW, RO, NONE], storage_netns.name(acts.settings)) as spaces:
        yield spaces


def run(fn: Any, arg: Any) -> Any:
    return ActivityEnvironment().run(fn, arg)


def rule(access_type: str, access_to: str, level: str) -> AccessRuleSpec:
    return AccessRuleSpec(str(uuid.uuid4()), access_type, access_to, level)


def test_a_share_from_create_to_delete_over_nfs(acts: StorageActivities,
                                               ns: dict[str, str]) -> None:
    sid, snap, clone = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    path = acts.pool.export_path(sid)
    for _ in range(2):  # a repeat after a crash converges on the same export
        made = run(acts.create_share, ShareSpec(sid, 1))
    assert made.export_locations == [f"{SERVER}:{path}"]
    with pytest.raises(NfsError):  # exported to nobody until rules are applied
        nfs_ls(ns[RW], nfs_url(path))

    rules = [rule("ip", RW, "rw"), rule("ip", RO, "ro"), rule("user", "alice", "rw"),
             rule("cert", "client.example.org", "ro")]
    for _ in range(2):
        applied = run(acts.apply_access, ApplyAccess(sid, rules))
    assert applied.applied == [rules[0].rule_id, rules[1].rule_id]
    assert set(applied.errors) == {rules[2].rule_id, rules[3].rule_id}
    assert "enforces only ip rules" in applied.errors[rules[3].rule_id]
    assert "TLS client certificates" in applied.errors[rules[3].rule_id]

    nfs_write(ns[RW], nfs_url(path, "doc.txt"), b"over nfs\n")
    assert (acts.pool.share_path(sid) / "doc.txt").read_bytes() == b"over nfs\n"  # in btrfs
    assert nfs_read(ns[RO], nfs_url(path, "doc.txt")) == b"over nfs\n"
    with pytest.raises(NfsError, match="ROFS"):
        nfs_write(ns[RO], nfs_url(path, "ro.txt"), b"must not land")
    with pytest.raises(NfsError):
        nfs_read(ns[NONE], nfs_url(path, "doc.txt"))

    # the qgroup limit holds over NFS too (preallocated extents count like data)
    fd = os.open(path / "bulk", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.posix_fallocate(fd, 0, GIB - 16 * MIB)
    finally:
        os.close(fd)
    big = b"x" * (32 * MIB)
    with pytest.raises(NfsError, match="Failed to write"):  # nfs-cp names no errno
        nfs_write(ns[RW], nfs_url(path, "past-the-limit"), big)
    assert (path / "past-the-limit").stat().st_size < len(big)
    run(acts.resize_share, ShareResize(sid, 2))  # the limit was the reason: now it fits
    nfs_write(ns[RW], nfs_url(path, "fits-now"), big)
    assert (path / "fits-now").stat().st_size == len(big)
    (path / "bulk").unlink()

    run(acts.create_snapshot, SnapshotSpec(sid, snap))
    run(acts.create_snapshot, SnapshotSpec(sid, snap))
    made = run(acts.create_share, ShareSpec(clone, 1, snapshot_id=snap, source_share_id=sid))
    assert (acts.pool.export_path(clone) / "doc.txt").read_bytes() == b"over nfs\n"

    # deny .4: the export's client list is exactly the rules given
    run(acts.apply_access, ApplyAccess(sid, [rules[1]]))
    with pytest.raises(NfsError):
        nfs_write(ns[RW], nfs_url(path, "denied.txt"), b"no")
    assert nfs_read(ns[RO], nfs_url(path, "doc.txt")) == b"over nfs\n"

    for share in (sid, clone):
        for _ in range(2):
            run(acts.delete_share, ShareSpec(share, 1))
        assert acts.exporter.export_id(share) is None  # type: ignore[attr-defined]
        assert not acts.pool.exists(share) and not acts.pool.export_path(share).exists()
    with pytest.raises(NfsError):
        nfs_ls(ns[RO], nfs_url(path))
    for _ in range(2):
        run(acts.delete_snapshot, SnapshotSpec(sid, snap))
    assert not acts.pool.snapshot_path(snap).exists()

"""SharePool on a real btrfs pool: subvolumes, qgroup limits enforced by the kernel,
read-only snapshots, shares from snapshots, deletes that leave nothing, and every
call safe to repeat.

Large fills use posix_fallocate: preallocated extents count against the qgroup like
written ones, so a test reaches a GiB limit without writing a GiB (2 cores). The
write that crosses a limit is a real os.write + fsync."""

from __future__ import annotations

import errno
import os
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError

from activities.storage.btrfs import is_subvolume, mounted_roots
from activities.storage.share_pool import CONFLICT, GIB, INVALID, SharePool
from tests.home_cleanup import mounts_under, teardown_home
from vmflow.contracts.shares import ShareErrors
from vmflow.settings import Settings

MIB = 1 << 20


def new_id() -> str:
    return str(uuid.uuid4())


def mount_fstype(point: Path) -> str:
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == str(point):
                return fields[fields.index("-") + 1]
    return ""


def preallocate(path: Path, nbytes: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.posix_fallocate(fd, 0, nbytes)
    finally:
        os.close(fd)


def write(path: Path, nbytes: int, data: bytes = b"v") -> None:
    """nbytes of real data, then fsync: an EDQUOT may show at either."""
    chunk = (data * (MIB // len(data) + 1))[:MIB]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        done = 0
        while done < nbytes:
            done += os.write(fd, chunk[: min(MIB, nbytes - done)])
        os.fsync(fd)
    finally:
        os.close(fd)


def refused(kind: str, call: Callable[..., Any], *args: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        call(*args)
    assert caught.value.type == kind, caught.value
    assert caught.value.non_retryable
    return caught.value


def test_ensure_makes_the_pool_once_and_remounts_shares(pool: SharePool) -> None:
    assert mount_fstype(pool.mount) == "btrfs"
    assert pool.qgroups() is not None  # quotas on: `qgroup show` fails otherwise
    assert os.stat(pool.image).st_blocks * 512 < GIB  # sparse
    sid = new_id()
    pool.create(sid, 1)
    write(pool.export_path(sid) / "doc", 10, b"kept")
    assert pool.ensure() == []  # nothing needed mounting
    assert len(mounted_roots(pool.mount)) == 1
    assert mounted_roots(pool.export_path(sid)) == [f"/shares/{sid}"]
    # a reboot: nothing mounted any more; ensure brings the pool and the share back
    subprocess.run(["umount", pool.export_path(sid)], check=True)
    subprocess.run(["umount", pool.mount], check=True)
    with pytest.raises(PermissionError):  # the bare mount point takes no data
        (pool.export_path(sid) / "lost").write_text("on the host's disk")
    with pytest.raises(RuntimeError, match="not mounted"):  # not "already gone"
        pool.delete(sid)
    assert pool.ensure() == [sid]
    assert mounted_roots(pool.mount) == ["/"]
    assert (pool.export_path(sid) / "doc").read_bytes() == b"keptkeptke"


def test_ensure_finishes_a_half_made_pool_and_never_formats_a_foreign_one(
        storage_settings: Settings) -> None:
    pool = SharePool(storage_settings)
    pool.dir.mkdir(parents=True)
    pool.image.touch()  # a first try that died before it sized and formatted the file
    pool.ensure()
    assert pool.image.stat().st_size == storage_settings.share_pool_gb * GIB
    assert mount_fstype(pool.mount) == "btrfs"

    other = Settings(home=storage_settings.home, host="unused", storage_host="foreign")
    foreign = SharePool(other)
    foreign.dir.mkdir(parents=True)
    with open(foreign.image, "wb") as f:
        f.truncate(16 * MIB)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(foreign.image)], check=True)
    before = foreign.image.read_bytes()
    refused(CONFLICT, foreign.ensure)
    assert foreign.image.read_bytes() == before and not mounted_roots(foreign.mount)


def test_create_mounts_its_own_subvolume_with_the_size_as_limit(pool: SharePool) -> None:
    sid = new_id()
    for _ in range(2):  # the second call finds everything in place
        assert pool.create(sid, 1) == pool.export_path(sid)
    assert pool.exists(sid) and is_subvolume(pool.share_path(sid))
    target = pool.export_path(sid)
    assert mounted_roots(target) == [f"/shares/{sid}"]  # one mount, not two
    assert mount_fstype(target) == "btrfs"
    assert os.stat(target).st_ino == 256  # the root of a subvolume
    assert pool.limit_bytes(sid) == GIB
    (target / "hello").write_text("hi")
    assert (pool.share_path(sid) / "hello").read_text() == "hi"


def test_writing_past_the_size_fails_and_extend_raises_the_limit(pool: SharePool) -> None:
    sid = new_id()
    target = pool.create(sid, 1)
    preallocate(target / "bulk", GIB - 32 * MIB)
    with pytest.raises(OSError) as full:
        write(target / "more", 64 * MIB)
    assert full.value.errno in (errno.EDQUOT, errno.ENOSPC)
    for _ in range(2):
        pool.resize(sid, 2)
    assert pool.limit_bytes(sid) == 2 * GIB
    write(target / "after-extend", 96 * MIB)
    assert (target / "after-extend").stat().st_size == 96 * MIB


def test_shrink_below_used_is_refused_and_changes_nothing(pool: SharePool) -> None:
    sid = new_id()
    target = pool.create(sid, 2)
    # no fsync: resize syncs before it reads the qgroup, so it sees this
    preallocate(target / "bulk", GIB + 200 * MIB)
    err = refused(ShareErrors.SHRINK_BELOW_USED, pool.resize, sid, 1)
    assert "more than the 1 GiB asked" in str(err) and "GiB" in str(err).split("holds")[1]
    assert pool.limit_bytes(sid) == 2 * GIB
    assert pool.used_bytes(sid) > GIB
    (target / "bulk").unlink()
    pool.resize(sid, 1)
    assert pool.limit_bytes(sid) == GIB
    assert pool.used_bytes(sid) < MIB


def test_snapshot_is_read_only_and_a_share_from_it_is_writable(pool: SharePool) -> None:
    sid, snap, clone = new_id(), new_id(), new_id()
    target = pool.create(sid, 1)
    write(target / "doc", 6, b"before")
    for _ in range(2):
        path = pool.snapshot(sid, snap)
    write(target / "doc", 5, b"after")
    assert (path / "doc").read_bytes() == b"before"
    with pytest.raises(OSError) as ro:
        (path / "new").write_text("x")
    assert ro.value.errno == errno.EROFS
    out = subprocess.run(["btrfs", "property", "get", "-ts", str(path), "ro"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "ro=true"

    for _ in range(2):
        clone_target = pool.create(clone, 1, from_snapshot=snap)
    assert mounted_roots(clone_target) == [f"/shares/{clone}"]
    assert (clone_target / "doc").read_bytes() == b"before"
    write(clone_target / "doc", 5, b"clone")
    assert (clone_target / "doc").read_bytes() == b"beforeclone"
    assert (target / "doc").read_bytes() == b"beforeafter"
    assert (path / "doc").read_bytes() == b"before"
    assert pool.limit_bytes(clone) == GIB

    refused(ShareErrors.NOT_FOUND, pool.snapshot, new_id(), new_id())
    refused(ShareErrors.NOT_FOUND, pool.create, new_id(), 1, new_id())


def test_a_share_from_a_snapshot_is_at_least_its_size(pool: SharePool) -> None:
    sid, snap, clone = new_id(), new_id(), new_id()
    target = pool.create(sid, 2)
    preallocate(target / "bulk", GIB + 100 * MIB)
    pool.snapshot(sid, snap)
    err = refused(INVALID, pool.create, clone, 1, snap)
    assert "more than the 1 GiB asked" in str(err)
    assert not pool.share_path(clone).exists()
    # thick: the clone's 2 GiB count in full while the source keeps its 2 GiB ...
    refused(ShareErrors.POOL_FULL, pool.create, clone, 2, snap)
    pool.delete(sid)  # ... once it is gone, only what the snapshot holds alone counts
    assert (pool.create(clone, 2, snap) / "bulk").stat().st_size == GIB + 100 * MIB


def test_delete_leaves_no_mount_subvolume_or_qgroup(pool: SharePool) -> None:
    sid, snap = new_id(), new_id()
    target = pool.create(sid, 1)
    write(target / "doc", 3)
    pool.snapshot(sid, snap)
    for _ in range(2):
        pool.delete(sid)
    assert mounted_roots(target) == [] and not target.exists()
    assert not pool.exists(sid) and not pool.share_path(sid).exists()
    assert f"shares/{sid}" not in pool.qgroups()
    assert (pool.snapshot_path(snap) / "doc").exists()  # a snapshot outlives its share
    for _ in range(2):
        pool.delete_snapshot(snap)
    assert not pool.snapshot_path(snap).exists()
    assert f"snapshots/{snap}" not in pool.qgroups()
    assert set(pool.qgroups()) == {"<toplevel>"}  # none left behind, not even stale
    pool.delete(new_id())  # never there: already gone
    pool.delete_snapshot(new_id())


def test_a_pool_that_cannot_hold_the_size_refuses_it(pool: SharePool) -> None:
    too_big = new_id()
    err = refused(ShareErrors.POOL_FULL, pool.create, too_big, 100)
    assert "cannot hold 100 GiB" in str(err)
    assert not pool.share_path(too_big).exists() and not pool.export_path(too_big).exists()
    # thick provisioning: sizes count, not what the shares hold
    first = new_id()
    pool.create(first, 2)
    refused(ShareErrors.POOL_FULL, pool.create, new_id(), 2)
    refused(ShareErrors.POOL_FULL, pool.resize, first, 4)
    assert pool.limit_bytes(first) == 2 * GIB
    pool.create(new_id(), 1)  # what is left still fits


SOME = "3f2b8c1e-5d4a-4e7b-9c0d-1a2b3c4d5e6f"


@pytest.mark.parametrize("bad", ["not-a-uuid", "../x", "../" + SOME, SOME.upper(),
                                 "{" + SOME + "}", SOME.replace("-", ""), SOME + "/..",
                                 "urn:uuid:" + SOME, ""])
def test_bad_ids_are_refused_before_any_path(pool: SharePool, bad: str) -> None:
    before = sorted(str(p) for p in pool.dir.rglob("*") if not str(p).startswith(
        str(pool.mount) + "/"))
    good = new_id()
    calls: list[tuple[Callable[..., Any], tuple[Any, ...]]] = [
        (pool.create, (bad, 1)), (pool.create, (good, 1, bad)), (pool.resize, (bad, 2)),
        (pool.delete, (bad,)), (pool.snapshot, (bad, good)), (pool.snapshot, (good, bad)),
        (pool.delete_snapshot, (bad,)), (pool.export_path, (bad,)),
        (pool.used_bytes, (bad,)), (pool.exists, (bad,))]
    for call, args in calls:
        refused(INVALID, call, *args)
    after = sorted(str(p) for p in pool.dir.rglob("*") if not str(p).startswith(
        str(pool.mount) + "/"))
    assert after == before
    assert list(pool.shares.iterdir()) == []


def test_teardown_leaves_no_mount_or_loop_device(storage_settings: Settings) -> None:
    """The fixtures' cleanup works, so a failed test cannot leak mounts."""
    home = storage_settings.home
    pool = SharePool(storage_settings)
    pool.ensure()
    pool.create(new_id(), 1)
    assert len(mounts_under(home)) == 2
    loop = subprocess.run(["losetup", "-j", str(pool.image)], capture_output=True,
                          text=True, check=True).stdout.split(":")[0]
    assert loop.startswith("/dev/loop")
    teardown_home(home)
    assert mounts_under(home) == [] and not home.exists()
    attached = subprocess.run(["losetup", "-l", "-n", "-O", "NAME,BACK-FILE"],
                              capture_output=True, text=True).stdout
    assert str(pool.image) not in attached


def test_a_home_with_a_space_in_its_path(storage_settings: Settings) -> None:
    """mountinfo escapes the space; the pool still finds its own mounts."""
    home = storage_settings.home / "with space"
    pool = SharePool(Settings(home=home, host="unused", storage_host="spaced",
                              share_pool_gb=2))
    sid = new_id()
    for _ in range(2):
        pool.ensure()
        pool.create(sid, 1)
    assert mounted_roots(pool.mount) == ["/"]
    assert mounted_roots(pool.export_path(sid)) == [f"/shares/{sid}"]
    pool.delete(sid)
    assert mounted_roots(pool.export_path(sid)) == []

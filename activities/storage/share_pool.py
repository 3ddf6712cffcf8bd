"""The storage worker's share pool (testbed NOTES 1c, 1d): a sparse file formatted
btrfs and loop-mounted, one subvolume per share with its size as qgroup limit.

    $storage_dir/pool.img                   the pool, share_pool_gb GiB (sparse)
    $storage_dir/pool/shares/<share_id>     a subvolume per share
    $storage_dir/pool/snapshots/<snap_id>   read-only snapshots of shares
    $storage_dir/exports/<share_id>         the share's own subvol= mount: ganesha
                                            cannot export a bare subvolume directory

Every method ensures a state: repeating it after a crash at any point is harmless.
Ids must be canonical UUIDs before they reach a path; commands are argument lists.
Provisioning is thick: the shares' sizes plus what snapshots hold on their own never
exceed what the pool's data can hold, so no share meets a full pool below its size.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from activities.errors import permanent
from activities.storage import btrfs
from activities.storage.btrfs import Qgroup, is_subvolume, mounted_roots, run
from vmflow.contracts.reconcile import StoredSubvolume
from vmflow.contracts.shares import ShareErrors
from vmflow.settings import Settings

GIB = 1 << 30
INVALID = "ShareInvalidRequest"  # a bad id or size: the caller's mistake
CONFLICT = "SharePoolConflict"  # something not ours is where the pool wants to be

_locks: dict[Path, threading.Lock] = {}
_locks_guard = threading.Lock()


def is_canonical(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except (ValueError, TypeError, AttributeError):
        return False


def checked_id(value: str, what: str = "share id") -> str:
    """`value` if it is a UUID in canonical form; anything else never reaches a path."""
    if not is_canonical(value):
        raise permanent(f"{what} {value!r} is not a canonical UUID", INVALID)
    return value


class SharePool:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.dir = settings.storage_dir.resolve()  # as /proc/self/mountinfo spells it
        self.image = self.dir / "pool.img"
        self.mount = self.dir / "pool"
        self.shares = self.mount / "shares"
        self.snapshots = self.mount / "snapshots"
        self.exports = self.dir / "exports"
        with _locks_guard:  # one lock per pool, whatever the instance, in this process
            self.lock = _locks.setdefault(self.dir, threading.Lock())

    # ---- the pool ------------------------------------------------------------
    def ensure(self) -> list[str]:
        """The pool image exists with a btrfs on it, is mounted with quotas on, and
        every share is mounted at its export path (after a reboot they are not).
        Returns the shares it had to mount: their exports need resolving anew."""
        with self.lock:
            self.dir.mkdir(parents=True, exist_ok=True)
            self.image.touch()
            probe = subprocess.run(["blkid", "-p", "-o", "value", "-s", "TYPE",
                                    str(self.image)], capture_output=True, text=True)
            fs = probe.stdout.strip()
            if probe.returncode == 2:  # blkid: no file system signature at all
                with open(self.image, "r+b") as f:  # sparse; a try that died may have
                    f.truncate(max(os.fstat(f.fileno()).st_size,  # left it short
                                   self.settings.share_pool_gb * GIB))
                run("mkfs.btrfs", "-q", "-L", "vmflow-pool", self.image)
            elif probe.returncode != 0:
                raise RuntimeError(f"blkid {self.image}: {probe.stderr.strip()}")
            elif fs != "btrfs":
                raise permanent(f"{self.image} holds a {fs} file system, not btrfs; "
                                "refusing to touch it", CONFLICT)
            self.mount.mkdir(exist_ok=True)
            if not mounted_roots(self.mount):
                run("mount", "-o", "loop", self.image, self.mount)
            if subprocess.run(["btrfs", "qgroup", "show", str(self.mount)],
                              capture_output=True).returncode != 0:
                run("btrfs", "quota", "enable", self.mount)
                run("btrfs", "quota", "rescan", "-w", self.mount)
            for d in (self.shares, self.snapshots, self.exports):
                d.mkdir(exist_ok=True)
            mounted = []
            for share in sorted(self.shares.iterdir()):  # skip what is not ours (no UUID)
                if (is_subvolume(share) and is_canonical(share.name)
                        and not mounted_roots(self.exports / share.name)):
                    self._mount_share(share.name)
                    mounted.append(share.name)
            return mounted

    def qgroups(self) -> dict[str, Qgroup]:
        return btrfs.qgroups(self.mount)

    def room_for(self, share_id: str) -> int:
        """Bytes share `share_id` may be given: the pool's data capacity minus the other
        shares' sizes and what snapshots hold on their own."""
        taken = 0
        for path, q in self.qgroups().items():
            if path.startswith("shares/") and path != f"shares/{share_id}":
                taken += q.limit if q.limit is not None else q.referenced
            elif path.startswith("snapshots/"):
                taken += q.exclusive
        return btrfs.data_capacity(self.mount) - taken

    def _check_room(self, share_id: str, size_gb: int) -> None:
        room = self.room_for(share_id)
        if size_gb * GIB > room:
            raise permanent(f"the share pool on {self.settings.storage_name} cannot hold "
                            f"{size_gb} GiB: {room / GIB:.2f} GiB left unprovisioned",
                            ShareErrors.POOL_FULL)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One change at a time, on a mounted pool: unmounted, every share would look
        absent (and a delete would "succeed")."""
        with self.lock:
            if "/" not in mounted_roots(self.mount):
                raise RuntimeError(f"the share pool is not mounted at {self.mount}")
            yield

    # ---- shares --------------------------------------------------------------
    def share_path(self, share_id: str) -> Path:
        return self.shares / checked_id(share_id)

    def snapshot_path(self, snapshot_id: str) -> Path:
        return self.snapshots / checked_id(snapshot_id, "snapshot id")

    def export_path(self, share_id: str) -> Path:
        return self.exports / checked_id(share_id)

    def exists(self, share_id: str) -> bool:
        return is_subvolume(self.share_path(share_id))

    def create(self, share_id: str, size_gb: int, from_snapshot: str | None = None) -> Path:
        """The share's subvolume (empty, or a writable snapshot of `from_snapshot`),
        its limit of size_gb GiB and its mount; the export path."""
        path = self.share_path(share_id)
        source = None if from_snapshot is None else self.snapshot_path(from_snapshot)
        if size_gb < 1:
            raise permanent(f"share size {size_gb} GiB: at least 1", INVALID)
        with self._locked():
            if not is_subvolume(path):
                self._check_room(share_id, size_gb)
                if path.exists():  # never ours: btrfs makes a subvolume atomically
                    raise permanent(f"{path} exists and is not a subvolume", CONFLICT)
                if source is None:
                    run("btrfs", "-q", "subvolume", "create", path)
                else:
                    held = self._snapshot_bytes(self._require(source))
                    if held > size_gb * GIB:  # Manila: at least the snapshot's size
                        raise permanent(f"snapshot {from_snapshot} holds {held / GIB:.2f} "
                                        f"GiB, more than the {size_gb} GiB asked", INVALID)
                    run("btrfs", "-q", "subvolume", "snapshot", source, path)
            run("btrfs", "qgroup", "limit", str(size_gb * GIB), path)
            return self._mount_share(share_id)

    def ensure_mounted(self, share_id: str) -> Path:
        """The share's export path, mounted (a share must exist)."""
        with self._locked():
            self._require(self.share_path(share_id))
            return self._mount_share(share_id)

    def _snapshot_bytes(self, snap: Path) -> int:
        q = self.qgroups().get(f"snapshots/{snap.name}")
        return q.referenced if q else 0

    @staticmethod
    def _require(path: Path) -> Path:
        if not is_subvolume(path):
            raise permanent(f"{path.parent.name[:-1]} {path.name} is not in the pool",
                            ShareErrors.NOT_FOUND)
        return path

    def _mount_share(self, share_id: str) -> Path:
        target = self.export_path(share_id)
        target.mkdir(exist_ok=True)
        roots = mounted_roots(target)
        if f"/shares/{share_id}" not in roots:
            if roots:  # something else is mounted there: never stack on it
                raise RuntimeError(f"{target} has {roots} mounted, not shares/{share_id}")
            # the bare mount point is immutable: an export served while the share is
            # not mounted (ganesha up before the pool after a reboot) cannot put data
            # on the host's file system, outside any limit (best effort: tmpfs may not)
            subprocess.run(["chattr", "+i", str(target)], capture_output=True)
            run("mount", "-o", f"loop,subvol=shares/{share_id}", self.image, target)
        return target

    def used_bytes(self, share_id: str) -> int:
        """What the share holds (its qgroup's referenced bytes), current: the fs is
        synced first, since qgroups are counted when a transaction commits."""
        self._require(self.share_path(share_id))
        run("btrfs", "filesystem", "sync", self.mount)
        q = self.qgroups().get(f"shares/{share_id}")
        if q is None:
            raise RuntimeError(f"share {share_id} has no qgroup (quota rescan running?)")
        return q.referenced

    def limit_bytes(self, share_id: str) -> int | None:
        return getattr(self.qgroups().get(f"shares/{checked_id(share_id)}"), "limit", None)

    def resize(self, share_id: str, new_size_gb: int) -> None:
        """Set the limit to new_size_gb GiB. Growing needs room in the pool; shrinking
        below what the share holds is refused (btrfs would accept it and leave a share
        that refuses every write)."""
        path = self.share_path(share_id)
        if new_size_gb < 1:
            raise permanent(f"share size {new_size_gb} GiB: at least 1", INVALID)
        with self._locked():
            self._require(path)
            used = self.used_bytes(share_id)
            if used > new_size_gb * GIB:
                raise permanent(f"share {share_id} holds {used} bytes ({used / GIB:.2f} GiB), "
                                f"more than the {new_size_gb} GiB asked",
                                ShareErrors.SHRINK_BELOW_USED)
            limit = self.limit_bytes(share_id)
            if limit is None or new_size_gb * GIB > limit:
                self._check_room(share_id, new_size_gb)
            run("btrfs", "qgroup", "limit", str(new_size_gb * GIB), path)

    def delete(self, share_id: str) -> None:
        """Unmount, delete the subvolume, drop its qgroup; an absent share is gone."""
        path, target = self.share_path(share_id), self.export_path(share_id)
        with self._locked():
            while mounted_roots(target):  # stacked mounts (never ours) go too
                run("umount", target)
            if target.exists():
                subprocess.run(["chattr", "-i", str(target)], capture_output=True)
                target.rmdir()
            self._delete_subvolume(path)

    def subvolumes(self) -> tuple[list[StoredSubvolume], list[StoredSubvolume]]:
        """The shares' and the snapshots' subvolumes (named by a canonical UUID: nothing
        else is ours), each with the age of its root's mtime; a snapshot with the share
        it was taken of, while the pool holds that share. For the ledger reconciler."""
        with self._locked():  # unmounted, every share would look gone
            listed = btrfs.subvolume_list(self.mount)
            share_of = {own: path.removeprefix("shares/") for path, (own, _) in listed.items()
                        if path.startswith("shares/")}  # uuid -> share id
            now = time.time()
            found: dict[str, list[StoredSubvolume]] = {"shares": [], "snapshots": []}
            for path, (_, parent) in sorted(listed.items()):
                top, _, name = path.partition("/")
                if top not in found or not is_canonical(name):  # not ours, or nested
                    continue
                try:
                    age = max(0.0, now - (self.mount / path).lstat().st_mtime)
                except FileNotFoundError:  # deleted meanwhile
                    continue
                share = share_of.get(parent or "") if top == "snapshots" else None
                found[top].append(StoredSubvolume(name, age, share))
            return found["shares"], found["snapshots"]

    # ---- snapshots -----------------------------------------------------------
    def snapshot(self, share_id: str, snapshot_id: str) -> Path:
        """A read-only snapshot of the share at pool/snapshots/<snapshot_id>."""
        path, snap = self.share_path(share_id), self.snapshot_path(snapshot_id)
        with self._locked():
            if is_subvolume(snap):  # made by an earlier try (btrfs makes it atomically)
                run("btrfs", "property", "set", "-ts", snap, "ro", "true")
                return snap
            if snap.exists():
                raise permanent(f"{snap} exists and is not a subvolume", CONFLICT)
            self._require(path)
            run("btrfs", "-q", "subvolume", "snapshot", "-r", path, snap)
            return snap

    def delete_snapshot(self, snapshot_id: str) -> None:
        with self._locked():
            self._delete_subvolume(self.snapshot_path(snapshot_id))

    def _delete_subvolume(self, path: Path) -> None:
        if is_subvolume(path):
            subvol_id = run("btrfs", "inspect-internal", "rootid", path).strip()
            run("btrfs", "-q", "subvolume", "delete", path)
            # the cleaner drops it in the background after a commit (else up to the
            # 30 s commit interval later); its qgroup can go once it has
            run("btrfs", "filesystem", "sync", self.mount)
            run("btrfs", "subvolume", "sync", self.mount, subvol_id)
            subprocess.run(["btrfs", "qgroup", "destroy", f"0/{subvol_id}", str(self.mount)],
                           capture_output=True)  # recent kernels drop it themselves
        elif path.exists():
            raise permanent(f"{path} exists and is not a subvolume", CONFLICT)
        # qgroups left by a try that died between the delete and the destroy
        subprocess.run(["btrfs", "qgroup", "clear-stale", str(self.mount)],
                       capture_output=True)

"""btrfs and mount primitives for the share pool (activities.storage.share_pool): commands
run as argument lists, what is mounted where, subvolumes, qgroups and data space."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from vmflow.mountinfo import mounts

SUBVOL_INO = 256  # the root inode of every btrfs subvolume (BTRFS_FIRST_FREE_OBJECTID)
CMD_TIMEOUT_S = 600.0
# a line of `btrfs subvolume list -u -q`: ... parent_uuid <uuid|-> uuid <uuid> path <path>
_SUBVOLUME = re.compile(r"\bparent_uuid (\S+)\s+uuid (\S+)\s+path (\S+)$")


def run(*argv: str | Path) -> str:
    """Run a command (argument list, never a shell); its stdout, or a retryable error
    that quotes its stderr."""
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          timeout=CMD_TIMEOUT_S)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(str(a) for a in argv)} failed "
                           f"(rc={done.returncode}): {done.stderr.strip()}")
    return done.stdout


def mounted_roots(mount_point: Path) -> list[str]:
    """The fs roots mounted on `mount_point` (btrfs: the subvolume path, e.g.
    /shares/<id>), from /proc/self/mountinfo; empty when nothing is mounted there."""
    return [root for root, point in mounts() if point == str(mount_point)]


def is_subvolume(path: Path) -> bool:
    """A btrfs subvolume's root: inode 256, on a device of its own (btrfs gives each
    subvolume one), so a plain directory elsewhere cannot pass for one."""
    try:
        st = path.lstat()
        return (path.is_dir() and not path.is_symlink() and st.st_ino == SUBVOL_INO
                and st.st_dev != path.parent.lstat().st_dev)
    except OSError:
        return False


def parse_subvolume_list(text: str) -> dict[str, tuple[str, str | None]]:
    """`btrfs subvolume list -u -q` → {path under the top level: (uuid, parent uuid)}."""
    found: dict[str, tuple[str, str | None]] = {}
    for line in text.splitlines():
        m = _SUBVOLUME.search(line.strip())
        if m:
            parent, own, path = m.groups()
            found[path] = (own, None if parent == "-" else parent)
    return found


def subvolume_list(mount: Path) -> dict[str, tuple[str, str | None]]:
    """Every subvolume of the file system at `mount`: its uuid and the uuid of the
    subvolume it is a snapshot of (None for one made empty)."""
    return parse_subvolume_list(run("btrfs", "subvolume", "list", "-u", "-q", mount))


@dataclass(frozen=True)
class Qgroup:
    referenced: int
    exclusive: int
    limit: int | None  # max referenced; None = no limit


def qgroups(mount: Path) -> dict[str, Qgroup]:
    """Every level-0 qgroup of the file system at `mount`, by its subvolume's path
    under the top level (shares/<id>); <stale> for one whose subvolume is gone."""
    out = run("btrfs", "qgroup", "show", "-re", "--raw", mount)
    found = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) == 6 and f[0].startswith("0/") and f[1].isdigit():
            found[f[5]] = Qgroup(int(f[1]), int(f[2]), int(f[3]) if f[3].isdigit() else None)
    return found


def data_capacity(mount: Path) -> int:
    """What the file system's data can hold: data already there plus btrfs's estimate
    of the free space (metadata and its DUP copies are not data)."""
    out = run("btrfs", "filesystem", "usage", "-b", mount)
    used = free = 0
    for line in out.splitlines():
        s = line.strip()
        if s.startswith("Free (estimated):"):
            free = int(s.split()[2])
        elif s.startswith("Data,"):
            used = int(s.split("Used:")[1].split()[0].rstrip(","))
    return used + free

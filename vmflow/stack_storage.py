"""The stack's storage side: an rpcbind and nfs-ganesha in the storage side's own
network namespace (vmflow.storage_netns), ganesha's private D-Bus, and the storage
worker that drives it (their files: vmflow.ganesha_config). Here are those components,
what must be in place before each starts (the namespace, rpcbind, storage_dir shared
into ganesha's mount namespace, the config files), their readiness checks, and
unmounting the storage pool when the stack goes down.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

from vmflow import ganesha_config as gc
from vmflow import mountinfo, storage_netns
from vmflow.processes import (
    BIN,
    Component,
    StackError,
    log_file,
    resolve,
    run_ok,
    running_pid,
    spawn,
    terminate,
    wait_healthy,
)
from vmflow.settings import Settings

GANESHA_TIMEOUT = 30.0
DBUS_TIMEOUT = 10.0
RPCBIND_TIMEOUT = 10.0


# Each runs in a mount namespace of its own too, a slave of the machine's: the share
# mounts the storage worker makes under storage_dir (a shared mount: share_storage_dir)
# reach it, and what it mounts stays its own.
# rpcbind gets a /run of its own (a tmpfs): its socket and lock there are fixed paths
# that the machine's rpcbind, or another stack's, uses.
RPCBIND = "/usr/sbin/rpcbind"
RPCBIND_SCRIPT = 'mount -t tmpfs -o mode=0755 vmflow-rpcbind /run && exec "$0" -f -w'
# ganesha registers with rpcbind through this socket first, a path no network namespace
# hides, and through its namespace's loopback only when nobody answers there (measured):
# it sees the machine's rpcbind's socket masked, so it registers with its own.
MACHINE_RPCBIND_SOCKET = "/run/rpcbind.sock"
GANESHA = "/usr/bin/ganesha.nfsd"
GANESHA_SCRIPT = (f'if [ -e {MACHINE_RPCBIND_SOCKET} ]; then '
                  f'mount --bind /dev/null {MACHINE_RPCBIND_SOCKET} || exit 1; fi; exec "$0" "$@"')
MOUNT_PROGRAM = "100005"  # NFSv3 clients look MOUNT up in rpcbind


def storage_components(s: Settings) -> list[Component]:
    """rpcbind and nfs-ganesha in the storage namespace, ganesha's own D-Bus, then the
    storage worker that drives it."""
    bus = (("DBUS_SYSTEM_BUS_ADDRESS", gc.dbus_address(s)),)
    dbus_conf = f"--config-file={gc.dbus_config(s)}"
    conf = str(gc.main_config(s))
    own_mounts = ("unshare", "--mount", "--propagation", "slave", "/bin/sh", "-c")
    rpcbind = storage_netns.inside(s, *own_mounts, RPCBIND_SCRIPT, RPCBIND)
    ganesha = storage_netns.inside(
        s, *own_mounts, GANESHA_SCRIPT, GANESHA, "-F", "-f", conf,
        "-L", str(log_file(s, "ganesha")), "-p", str(gc.ganesha_dir(s) / "nfsd.pid"),
        "-N", "NIV_EVENT")
    return [
        Component("rpcbind", tuple(rpcbind), (RPCBIND,)),
        Component("ganesha-dbus", ("/usr/bin/dbus-daemon", "--nofork", dbus_conf), (dbus_conf,)),
        Component("ganesha", tuple(ganesha), ("-f", conf), env=bus),
        Component("storage", (str(BIN / "python"), "-m", "workers.storage"),
                  ("-m", "workers.storage"), env=bus),
    ]


def _component(s: Settings, name: str) -> Component:
    return next(c for c in storage_components(s) if c.name == name)


def _pid(s: Settings, name: str) -> int | None:
    s = resolve(s)
    return running_pid(s, name, _component(s, name))


def port_listeners(port: int, s: Settings | None = None) -> list[int | None]:
    """Pids listening on a TCP port (None: no process, e.g. a kernel server), in the
    storage namespace of `s`, or in the machine's own namespace without one."""
    argv = ["ss", "-Hltnp", "sport", "=", f":{port}"]
    r = run_ok(storage_netns.inside(s, *argv) if s is not None else argv, timeout=5.0)
    if r is None:
        return []
    found: list[int | None] = []
    for line in r.stdout.splitlines():
        pids = [int(p) for p in re.findall(r"pid=(\d+)", line)]
        found += pids or [None]
    return found


def _mount_points() -> list[str]:
    return [point for _, point in mountinfo.mounts()]


def share_storage_dir(s: Settings) -> None:
    """storage_dir becomes a mount of its own (a bind onto itself) with shared
    propagation, so that mounts made under it later reach ganesha's mount namespace;
    this machine's root mount is private. Before anything is mounted under it: a bind
    made over the pool's mounts would hide them."""
    d = s.storage_dir.resolve()
    d.mkdir(parents=True, exist_ok=True)
    points = _mount_points()
    if str(d) not in points:
        under = [p for p in points if p.startswith(f"{d}/")]
        if under:
            raise StackError(f"{under[0]} is mounted, but {d} is not yet the shared mount "
                             "ganesha needs; stop the stack (make down) and start it again")
        subprocess.run(["mount", "--bind", str(d), str(d)], check=True, capture_output=True)
    subprocess.run(["mount", "--make-shared", str(d)], check=True, capture_output=True)


# ---- readiness ------------------------------------------------------------------------


def _rpcinfo(s: Settings) -> str | None:
    r = run_ok(storage_netns.inside(s, "rpcinfo", "-p", "127.0.0.1"), timeout=5.0)
    return None if r is None else r.stdout


def rpcbind_ok(s: Settings) -> bool:
    """The storage namespace's rpcbind answers on its loopback."""
    return _rpcinfo(s) is not None


def registered_programs(s: Settings) -> set[str]:
    """RPC program numbers registered with the storage namespace's rpcbind."""
    return {line.split()[0] for line in (_rpcinfo(s) or "").splitlines()[1:] if line.split()}


def dbus_ok(s: Settings) -> bool:
    return run_ok(["dbus-send", f"--bus={gc.dbus_address(s)}", "--print-reply",
                   "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus",
                   "org.freedesktop.DBus.ListNames"], timeout=5.0) is not None


def ganesha_ok(s: Settings) -> bool:
    """Serving NFS on 2049 of its namespace, registered with that namespace's rpcbind
    (NFSv3 clients look MOUNT up there), and answering its export manager on our bus."""
    pid = _pid(s, "ganesha")
    if pid is None or pid not in port_listeners(gc.NFS_PORT, s):
        return False
    if MOUNT_PROGRAM not in registered_programs(s):
        return False
    return run_ok(["dbus-send", f"--bus={gc.dbus_address(s)}", "--print-reply",
                   f"--dest={gc.GANESHA_BUS}", gc.EXPORT_MGR_PATH,
                   f"{gc.EXPORT_MGR_IFACE}.ShowExports"],
                  timeout=5.0) is not None


# components with a readiness check: (check, timeout); up() waits for each after start
READY: dict[str, tuple[Callable[[Settings], bool], float]] = {
    "rpcbind": (rpcbind_ok, RPCBIND_TIMEOUT),
    "ganesha-dbus": (dbus_ok, DBUS_TIMEOUT),
    "ganesha": (ganesha_ok, GANESHA_TIMEOUT),
}


def wait_ready(s: Settings, comp: Component) -> None:
    check, timeout = READY[comp.name]
    wait_healthy(s, comp.name, comp, lambda: check(s), timeout)


# ---- before a start, after a stop -----------------------------------------------------


def _config(write: Callable[[Settings], Path], s: Settings) -> None:
    try:
        write(s)
    except (OSError, ValueError) as e:
        raise StackError(f"cannot write the nfs-ganesha config: {e}") from e


def ensure_netns(s: Settings) -> None:
    """The storage namespace (vmflow.storage_netns.ensure). Made anew, it orphans a
    running rpcbind or ganesha of ours in the one it replaces (its name deleted by
    hand, say): they are stopped, to be started in the new one."""
    if not storage_netns.exists(s):
        for name in ("ganesha", "rpcbind"):
            terminate(s, name, _component(s, name))
    storage_netns.ensure(s)


def prepare(s: Settings, name: str) -> None:
    """What a component needs in place just before it starts (only storage ones do)."""
    if name == "rpcbind":
        ensure_netns(s)
    elif name == "ganesha-dbus":
        if _pid(s, "ganesha") is not None:  # it cannot re-attach to a new bus: restarted next
            terminate(s, "ganesha", _component(s, "ganesha"))
        _config(gc.write_dbus_config, s)
    elif name == "ganesha":
        ensure_netns(s)
        try:
            share_storage_dir(s)
        except subprocess.CalledProcessError as e:
            raise StackError(f"cannot share {s.storage_dir}: {e.stderr}") from e
        if _pid(s, "rpcbind") is None:  # callers that start ganesha alone (tests) get it too
            spawn(s, _component(s, "rpcbind"))
        wait_ready(s, _component(s, "rpcbind"))
        _config(gc.write_main_config, s)


def unmount_storage(s: Settings) -> None:
    """The share mounts and the pool the storage worker made: with ganesha and the
    worker stopped nothing uses them, and the next start mounts them again. Deepest
    first, storage_dir's own bind last; a loop mount's device goes with its last unmount
    (autoclear).

    Another stack's host started meanwhile (vmflow.hostbed: libvirtd in a private copy
    of the machine's mounts, as are its guests' qemus) holds a copy of the pool's mount
    until it stops: the loop device stays, its backing file open through storage_dir's
    bind, which a plain umount then finds busy. That bind is detached lazily instead,
    so nothing of this stack stays mounted here (the pool goes when that copy does)."""
    root = str(s.storage_dir.resolve())
    points = [point for point in _mount_points() if point.startswith(root + "/")]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", point], capture_output=True)
    if (root in _mount_points()  # share_storage_dir's
            and subprocess.run(["umount", root], capture_output=True).returncode != 0):
        subprocess.run(["umount", "-l", root], capture_output=True)

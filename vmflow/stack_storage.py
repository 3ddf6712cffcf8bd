"""The stack's storage side: an rpcbind and nfs-ganesha in the storage side's own
network namespace (vmflow.storage_netns), ganesha's private D-Bus, and the storage
worker that drives it (their files: vmflow.ganesha_config). Here are those components,
what must be in place before each starts (the namespace, rpcbind, the config files),
their readiness checks, and unmounting the storage pool when the stack goes down.
"""

from __future__ import annotations

import re
import socket
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


# rpcbind gets a /run of its own (a tmpfs in a mount namespace of its own): its socket
# and lock there are fixed paths that the machine's rpcbind, or another stack's, uses
RPCBIND = "/usr/sbin/rpcbind"
RPCBIND_SCRIPT = 'mount -t tmpfs -o mode=0755 vmflow-rpcbind /run && exec "$0" -f -w'
MACHINE_RPCBIND_SOCKET = Path("/run/rpcbind.sock")
MOUNT_PROGRAM = "100005"  # NFSv3 clients look MOUNT up in rpcbind


def storage_components(s: Settings) -> list[Component]:
    """rpcbind and nfs-ganesha in the storage namespace, ganesha's own D-Bus, then the
    storage worker that drives it."""
    bus = (("DBUS_SYSTEM_BUS_ADDRESS", gc.dbus_address(s)),)
    dbus_conf = f"--config-file={gc.dbus_config(s)}"
    conf = str(gc.main_config(s))
    rpcbind = storage_netns.inside(s, "unshare", "--mount", "--propagation", "private",
                                   "/bin/sh", "-c", RPCBIND_SCRIPT, RPCBIND)
    ganesha = storage_netns.inside(
        s, "/usr/bin/ganesha.nfsd", "-F", "-f", conf, "-L", str(log_file(s, "ganesha")),
        "-p", str(gc.ganesha_dir(s) / "nfsd.pid"), "-N", "NIV_EVENT")
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


def machine_rpcbind_answers() -> bool:
    """An rpcbind of the machine's own listens on its unix socket. ganesha reaches
    rpcbind through that socket first (a path: no network namespace hides it) and
    through its namespace's loopback only when nobody answers there (measured)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2.0)
        try:
            sock.connect(str(MACHINE_RPCBIND_SOCKET))
        except OSError:
            return False
    return True


def _check_machine_rpcbind() -> None:
    if machine_rpcbind_answers():
        raise StackError(
            f"an rpcbind of the machine answers on {MACHINE_RPCBIND_SOCKET}: ganesha would "
            "register its NFSv3 programs there rather than with the rpcbind of its own "
            "network namespace, and NFSv3 clients would not find them; stop that rpcbind "
            "(vmflow runs its own)")


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


def prepare(s: Settings, name: str) -> None:
    """What a component needs in place just before it starts (only storage ones do)."""
    if name == "rpcbind":
        storage_netns.ensure(s)
    elif name == "ganesha-dbus":
        if _pid(s, "ganesha") is not None:  # it cannot re-attach to a new bus: restarted next
            terminate(s, "ganesha", _component(s, "ganesha"))
        _config(gc.write_dbus_config, s)
    elif name == "ganesha":
        _check_machine_rpcbind()
        storage_netns.ensure(s)
        if _pid(s, "rpcbind") is None:  # callers that start ganesha alone (tests) get it too
            spawn(s, _component(s, "rpcbind"))
        wait_ready(s, _component(s, "rpcbind"))
        _config(gc.write_main_config, s)


def unmount_storage(s: Settings) -> None:
    """The share mounts and the pool the storage worker made: with ganesha and the
    worker stopped nothing uses them, and the next start mounts them again. Deepest
    first; a loop mount's device goes with its last unmount (autoclear)."""
    root = str(s.storage_dir.resolve()) + "/"
    points = [point for _, point in mountinfo.mounts() if point.startswith(root)]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", point], capture_output=True)

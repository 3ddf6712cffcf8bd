"""The stack's storage side: nfs-ganesha on a private D-Bus and the storage worker
that drives it (their files: vmflow.ganesha_config). Here are those components, what
must be in place before each starts (rpcbind, a free NFS port, the config files), their
readiness checks, and unmounting the storage pool when the stack goes down.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from vmflow import ganesha_config as gc
from vmflow import mountinfo
from vmflow.processes import (
    BIN,
    Component,
    StackError,
    cmdline,
    home_of,
    log_file,
    resolve,
    run_ok,
    running_pid,
    terminate,
    wait_healthy,
)
from vmflow.settings import Settings

GANESHA_TIMEOUT = 30.0
DBUS_TIMEOUT = 10.0
RPCBIND_TIMEOUT = 10.0


def storage_components(s: Settings) -> list[Component]:
    """nfs-ganesha on its own D-Bus, then the storage worker that drives it."""
    bus = (("DBUS_SYSTEM_BUS_ADDRESS", gc.dbus_address(s)),)
    dbus_conf = f"--config-file={gc.dbus_config(s)}"
    conf = str(gc.main_config(s))
    ganesha = ("/usr/bin/ganesha.nfsd", "-F", "-f", conf, "-L", str(log_file(s, "ganesha")),
               "-p", str(gc.ganesha_dir(s) / "nfsd.pid"), "-N", "NIV_EVENT")
    return [
        Component("ganesha-dbus", ("/usr/bin/dbus-daemon", "--nofork", dbus_conf), (dbus_conf,)),
        Component("ganesha", ganesha, ("-f", conf), env=bus),
        Component("storage", (str(BIN / "python"), "-m", "workers.storage"),
                  ("-m", "workers.storage"), env=bus),
    ]


def _ganesha(s: Settings) -> Component:
    return next(c for c in storage_components(s) if c.name == "ganesha")


def _ganesha_pid(s: Settings) -> int | None:
    s = resolve(s)
    return running_pid(s, "ganesha", _ganesha(s))


# ---- machine-wide: rpcbind and the NFS port -------------------------------------------


def rpcbind_ok() -> bool:
    return run_ok(["rpcinfo", "-p", "127.0.0.1"], timeout=5.0) is not None


def ensure_rpcbind() -> None:
    """NFSv3's portmapper. Machine-wide like libvirtd: started when absent, and `down`
    leaves it running (other NFS servers may be registered with it)."""
    if rpcbind_ok():
        return
    try:
        subprocess.run(["/usr/sbin/rpcbind", "-w"], check=True, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except (OSError, subprocess.CalledProcessError) as e:
        raise StackError(f"cannot start rpcbind: {e} (run vmflow/setup/install-deps.sh)") from e
    deadline = time.monotonic() + RPCBIND_TIMEOUT
    while not rpcbind_ok():
        if time.monotonic() > deadline:
            raise StackError(f"rpcbind does not answer after {RPCBIND_TIMEOUT:.0f} s")
        time.sleep(0.1)
    print("  rpcbind: started", flush=True)


def port_listeners(port: int) -> list[int | None]:
    """Pids listening on a TCP port (None: no process, e.g. a kernel server)."""
    r = run_ok(["ss", "-Hltnp", "sport", "=", f":{port}"], timeout=5.0)
    if r is None:
        return []
    found: list[int | None] = []
    for line in r.stdout.splitlines():
        pids = [int(p) for p in re.findall(r"pid=(\d+)", line)]
        found += pids or [None]
    return found


def _check_nfs_port(s: Settings) -> None:
    """One NFS server per machine (port 2049, and its programs in rpcbind)."""
    ours = _ganesha_pid(s)
    for pid in port_listeners(gc.NFS_PORT):
        if pid is not None and pid == ours:
            continue
        who = "an unknown process (the kernel's nfsd?)"
        if pid is not None:
            cmd = cmdline(pid)
            who = f"pid {pid} ({Path(cmd[0]).name if cmd else '?'}"
            home = home_of(pid)
            who += f", the vmflow stack in {home})" if home else ")"
        raise StackError(f"NFS port {gc.NFS_PORT} is held by {who}: only one NFS server can "
                         "run on a machine; stop it first")


# ---- readiness ------------------------------------------------------------------------


def dbus_ok(s: Settings) -> bool:
    return run_ok(["dbus-send", f"--bus={gc.dbus_address(s)}", "--print-reply",
                   "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus",
                   "org.freedesktop.DBus.ListNames"], timeout=5.0) is not None


def ganesha_ok(s: Settings) -> bool:
    """Serving NFS on 2049 and answering its export manager on our bus."""
    pid = _ganesha_pid(s)
    if pid is None or pid not in port_listeners(gc.NFS_PORT):
        return False
    return run_ok(["dbus-send", f"--bus={gc.dbus_address(s)}", "--print-reply",
                   f"--dest={gc.GANESHA_BUS}", gc.EXPORT_MGR_PATH,
                   f"{gc.EXPORT_MGR_IFACE}.ShowExports"],
                  timeout=5.0) is not None


# components with a readiness check: (check, timeout); up() waits for each after start
READY: dict[str, tuple[Callable[[Settings], bool], float]] = {
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
    if name == "ganesha-dbus":
        if _ganesha_pid(s) is not None:
            terminate(s, "ganesha", _ganesha(s))  # it cannot re-attach to a new bus: restarted next
        _config(gc.write_dbus_config, s)
    elif name == "ganesha":
        _check_nfs_port(s)
        ensure_rpcbind()
        _config(gc.write_main_config, s)


def unmount_storage(s: Settings) -> None:
    """The share mounts and the pool the storage worker made: with ganesha and the
    worker stopped nothing uses them, and the next start mounts them again. Deepest
    first; a loop mount's device goes with its last unmount (autoclear)."""
    root = str(s.storage_dir.resolve()) + "/"
    points = [point for _, point in mountinfo.mounts() if point.startswith(root)]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", point], capture_output=True)

"""The embedded stack behind `make up`: libvirt, the tiny guest, bootstrap, then a
Temporal dev server, the control worker, the hypervisor worker(s) and the API, each a
background process with `$VMFLOW_HOME/run/<name>.pid` and `$VMFLOW_HOME/log/<name>.log`.

Everything comes from the Settings passed in (nothing is read at import time), so a
test session can run a private stack on its own home and ports:
`up(Settings(home=tmp, api_port=18774, temporal_address="127.0.0.1:17233", ...))`.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from vmflow import ganesha_config as gc
from vmflow import mountinfo
from vmflow.settings import Settings, get_settings

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.prefix) / "bin"  # the project venv: `temporal` and `python` live here
GUEST_SCRIPT = REPO / "vmflow" / "setup" / "build-tiny-guest.sh"
SYSTEM_URI = "qemu:///system"

LIBVIRT_TIMEOUT = 90.0  # first start probes QEMU capabilities: ~8 s on a quiet machine
TEMPORAL_TIMEOUT = 60.0
API_TIMEOUT = 60.0
WORKER_GRACE = 3.0  # a worker that cannot import or connect dies within this
STOP_TIMEOUT = 10.0

# our own children, so that a killed one is reaped instead of lingering as a zombie
_children: dict[int, subprocess.Popen[bytes]] = {}


class StackError(RuntimeError):
    pass


@dataclass(frozen=True)
class Component:
    name: str
    argv: tuple[str, ...]
    # tokens that must all appear in /proc/<pid>/cmdline for a pid to be this component
    markers: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()


def _resolve(settings: Settings | None) -> Settings:
    """Children run in the repo, so a relative home would mean another place there."""
    s = settings or get_settings()
    return s if s.home.is_absolute() else s.model_copy(update={"home": s.home.absolute()})


# ---- what the stack is made of --------------------------------------------------------


def temporal_port(s: Settings) -> int:
    return int(s.temporal_address.rsplit(":", 1)[1])


def hypervisor_hosts(s: Settings) -> list[tuple[str, str]]:
    """(component name, host) for each hypervisor worker.

    The first host is always `hypervisor` / settings.host, so going from one host to
    two leaves it running. Extra hosts (VMFLOW_HOSTS=2, for migration) are named
    `<host>-<i>`. They still share qemu:///system for now: giving each one its own
    libvirtd in a mount+network namespace (testbed hypervisor NOTES) is a later
    change, made here and in the per-host environment below (VMFLOW_LIBVIRT_URI).
    """
    hosts = [("hypervisor", s.host)]
    for i in range(2, s.hosts + 1):
        host = f"{s.host}-{i}"
        hosts.append((f"hypervisor-{host}", host))
    return hosts


def components(s: Settings) -> list[Component]:
    """In start order; `down` stops them in reverse."""
    py = str(BIN / "python")
    port = str(temporal_port(s))
    db = str(s.home / "temporal.db")
    temporal = (str(BIN / "temporal"), "server", "start-dev",
                "--ip", "127.0.0.1", "--port", port, "--ui-port", str(s.temporal_ui_port),
                "--db-filename", db,
                "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal",
                # registered once they persist in the DB file; repeating them is harmless
                "--search-attribute", "VmflowResource=Keyword",
                "--search-attribute", "VmflowProject=Keyword",
                "--search-attribute", "VmflowOperation=Keyword",
                "--search-attribute", "VmflowHost=Keyword",
                "--ui-disable-news-fetch", "--log-level", "warn")  # fmt: skip
    comps = [
        Component("temporal", temporal, markers=("start-dev", db, port)),
        Component("control", (py, "-m", "workers.control"), ("-m", "workers.control")),
    ]
    for name, host in hypervisor_hosts(s):
        comps.append(Component(name, (py, "-m", "workers.hypervisor"),
                               ("-m", "workers.hypervisor"), env=(("VMFLOW_HOST", host),)))
    comps += storage_components(s)
    comps.append(Component("api", (py, "-m", "api"), ("-m", "api")))
    return comps


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


def stack_env(s: Settings, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The launcher's environment with every VMFLOW_* setting taken from `s`, so a
    stack started from a Settings object (tests) gets the same view in every child."""
    env = dict(os.environ)
    for field in Settings.model_fields:
        key = "VMFLOW_" + field.upper()
        value = getattr(s, field)
        if value is None:
            env.pop(key, None)
        elif isinstance(value, list | dict):
            env[key] = json.dumps(value)
        else:
            env[key] = str(value)
    env["VMFLOW_DATABASE_URL"] = s.db_url  # resolved, so children agree on the file
    env["PYTHONUNBUFFERED"] = "1"  # logs appear as they happen
    env.update(extra or {})
    return env


# ---- processes ------------------------------------------------------------------------


def pid_file(s: Settings, name: str) -> Path:
    return s.run_dir / f"{name}.pid"


def log_file(s: Settings, name: str) -> Path:
    return s.log_dir / f"{name}.log"


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "X"


def _cmdline(pid: int) -> list[str]:
    """Empty for a dead process or a zombie (whose cmdline the kernel has dropped). A
    process that is just exec'ing shows an empty cmdline for a few ms: wait that out."""
    for _ in range(50):
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return []
        if raw or _state(pid) in ("Z", "X"):
            break
        time.sleep(0.01)
    return raw.decode(errors="replace").split("\0")[:-1]


def _home_of(pid: int) -> str | None:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for item in environ:
        if item.startswith(b"VMFLOW_HOME="):
            return item[len("VMFLOW_HOME="):].decode(errors="replace")
    return None


def _is_ours(s: Settings, pid: int, comp: Component | None) -> bool:
    """Alive, started for this VMFLOW_HOME, and (if known) running this component:
    a pid file can outlive its process and the pid be reused by something else."""
    child = _children.get(pid)
    if child is not None and child.poll() is not None:  # our own child, now reaped
        del _children[pid]
        return False
    cmd = _cmdline(pid)
    if not cmd or _home_of(pid) != str(s.home):
        return False
    return comp is None or all(m in cmd for m in comp.markers)


def _find(s: Settings, name: str) -> Component | None:
    return next((c for c in components(s) if c.name == name), None)


def pid_of(s: Settings, name: str) -> int | None:
    """The pid of a running component of this stack, else None."""
    s = _resolve(s)
    pid = _read_pid(pid_file(s, name))
    if pid is not None and _is_ours(s, pid, _find(s, name)):
        return pid
    return None


def _signal(pid: int, sig: int) -> None:
    """The whole process group: each component leads its own session, and its
    children (uvicorn, qemu-img) must go with it."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _wait_gone(s: Settings, pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _is_ours(s, pid, None):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def kill_component(s: Settings, name: str, sig: int = signal.SIGKILL) -> int | None:
    """Send `sig` to a running component (for tests that crash a worker). Returns the
    pid, or None if it was not running. After SIGKILL, returns once it is gone."""
    s = _resolve(s)
    pid = pid_of(s, name)
    if pid is None:
        return None
    _signal(pid, sig)
    if sig == signal.SIGKILL:
        _wait_gone(s, pid, 5.0)
    return pid


def _start(s: Settings, comp: Component) -> int:
    s.run_dir.mkdir(parents=True, exist_ok=True)
    s.log_dir.mkdir(parents=True, exist_ok=True)
    with log_file(s, comp.name).open("ab") as log:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        log.write(f"--- {stamp} vmflow.stack: {' '.join(comp.argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(comp.argv, cwd=REPO, env=stack_env(s, dict(comp.env)),
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    _children[proc.pid] = proc
    pid_file(s, comp.name).write_text(f"{proc.pid}\n")
    print(f"  {comp.name}: started (pid {proc.pid})", flush=True)
    return proc.pid


def _stop(s: Settings, name: str) -> None:
    pid = pid_of(s, name)
    if pid is not None:
        _signal(pid, signal.SIGTERM)
        if not _wait_gone(s, pid, STOP_TIMEOUT):
            print(f"  {name}: no exit {STOP_TIMEOUT:.0f} s after SIGTERM, killing", flush=True)
            _signal(pid, signal.SIGKILL)
            _wait_gone(s, pid, 5.0)
        print(f"  {name}: stopped (pid {pid})", flush=True)
    pid_file(s, name).unlink(missing_ok=True)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def _fail(s: Settings, name: str, why: str, log: Path | None = None) -> StackError:
    log = log or log_file(s, name)
    print(f"vmflow: {name} {why}; last lines of {log}:\n{_tail(log)}", file=sys.stderr,
          flush=True)
    return StackError(f"{name} {why} (see {log})")


@contextmanager
def _lock(s: Settings) -> Iterator[None]:
    """One `up`/`down` at a time per home, so two racing `make up` don't both start."""
    s.run_dir.mkdir(parents=True, exist_ok=True)
    with (s.run_dir / "stack.lock").open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


# ---- health ---------------------------------------------------------------------------


def _run_ok(argv: list[str], timeout: float = 15.0) -> subprocess.CompletedProcess[str] | None:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r if r.returncode == 0 else None


def libvirt_ok() -> bool:
    return _run_ok(["virsh", "-c", SYSTEM_URI, "version"]) is not None


def temporal_ok(s: Settings) -> bool:
    r = _run_ok([str(BIN / "temporal"), "operator", "cluster", "health",
                 "--address", s.temporal_address], timeout=5.0)
    return r is not None and "SERVING" in r.stdout


def api_ok(s: Settings) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{s.api_port}/healthz", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _wait_healthy(s: Settings, name: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if pid_of(s, name) is None:
            raise _fail(s, name, "exited during start-up")
        if check():
            return
        if time.monotonic() > deadline:
            raise _fail(s, name, f"not healthy after {timeout:.0f} s")
        time.sleep(0.2)


# ---- the steps ------------------------------------------------------------------------


def _daemon_running(name: str) -> bool:
    pid = _read_pid(Path(f"/run/{name}.pid"))
    cmd = _cmdline(pid) if pid is not None else []
    return bool(cmd) and Path(cmd[0]).name == name


def ensure_libvirt(s: Settings) -> None:
    """libvirtd and virtlogd without systemd. They are machine-wide (pid files in /run,
    not in our run dir) and `down` leaves them running: other stacks' guests use them."""
    if s.libvirt_uri.startswith("test:"):
        return
    if libvirt_ok():
        if not _daemon_running("virtlogd"):  # QEMU's console logs go through it
            subprocess.run(["/usr/sbin/virtlogd", "-d"], capture_output=True)
        return
    t0 = time.monotonic()
    for daemon in ("virtlogd", "libvirtd"):
        if not _daemon_running(daemon):
            try:
                subprocess.run([f"/usr/sbin/{daemon}", "-d"], check=True, capture_output=True)
            except (OSError, subprocess.CalledProcessError) as e:
                raise StackError(f"cannot start {daemon}: {e} (run vmflow/setup/install-deps.sh)"
                                 ) from e
    deadline = t0 + LIBVIRT_TIMEOUT
    while not libvirt_ok():
        if time.monotonic() > deadline or not _daemon_running("libvirtd"):
            raise _fail(s, "libvirtd", f"does not answer on {SYSTEM_URI}",
                        Path("/var/log/libvirt/libvirtd.log"))
        time.sleep(0.3)
    print(f"  libvirt: started ({time.monotonic() - t0:.1f} s)", flush=True)


def ensure_guest(s: Settings) -> None:
    """The tiny guest image (a no-op once built)."""
    if (s.guest_cache / ".done").exists():
        return
    print(f"  tiny guest: building in {s.guest_cache}", flush=True)
    r = subprocess.run([str(GUEST_SCRIPT), str(s.guest_cache)], capture_output=True, text=True)
    if r.returncode != 0:
        raise StackError(f"building the tiny guest failed:\n{r.stdout}{r.stderr}")


def _bootstrap(s: Settings) -> None:
    from vmflow.bootstrap import bootstrap  # heavy imports (sqlmodel, alembic): only here

    bootstrap(s)


# ---- the storage side: nfs-ganesha on a private D-Bus (files: vmflow.ganesha_config) --

GANESHA_TIMEOUT = 30.0
DBUS_TIMEOUT = 10.0
RPCBIND_TIMEOUT = 10.0


def rpcbind_ok() -> bool:
    return _run_ok(["rpcinfo", "-p", "127.0.0.1"], timeout=5.0) is not None


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
    r = _run_ok(["ss", "-Hltnp", "sport", "=", f":{port}"], timeout=5.0)
    if r is None:
        return []
    found: list[int | None] = []
    for line in r.stdout.splitlines():
        pids = [int(p) for p in re.findall(r"pid=(\d+)", line)]
        found += pids or [None]
    return found


def _check_nfs_port(s: Settings) -> None:
    """One NFS server per machine (port 2049, and its programs in rpcbind)."""
    ours = pid_of(s, "ganesha")
    for pid in port_listeners(gc.NFS_PORT):
        if pid is not None and pid == ours:
            continue
        who = "an unknown process (the kernel's nfsd?)"
        if pid is not None:
            cmd = _cmdline(pid)
            who = f"pid {pid} ({Path(cmd[0]).name if cmd else '?'}"
            home = _home_of(pid)
            who += f", the vmflow stack in {home})" if home else ")"
        raise StackError(f"NFS port {gc.NFS_PORT} is held by {who}: only one NFS server can "
                         "run on a machine; stop it first")


def dbus_ok(s: Settings) -> bool:
    return _run_ok(["dbus-send", f"--bus={gc.dbus_address(s)}", "--print-reply",
                    "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus",
                    "org.freedesktop.DBus.ListNames"], timeout=5.0) is not None


def ganesha_ok(s: Settings) -> bool:
    """Serving NFS on 2049 and answering its export manager on our bus."""
    pid = pid_of(s, "ganesha")
    if pid is None or pid not in port_listeners(gc.NFS_PORT):
        return False
    return _run_ok(["dbus-send", f"--bus={gc.dbus_address(s)}", "--print-reply",
                    f"--dest={gc.GANESHA_BUS}", gc.EXPORT_MGR_PATH,
                    f"{gc.EXPORT_MGR_IFACE}.ShowExports"],
                   timeout=5.0) is not None


# components with a readiness check: (check, timeout); up() waits for each after start
READY: dict[str, tuple[Callable[[Settings], bool], float]] = {
    "ganesha-dbus": (dbus_ok, DBUS_TIMEOUT),
    "ganesha": (ganesha_ok, GANESHA_TIMEOUT),
}


def _config(write: Callable[[Settings], Path], s: Settings) -> None:
    try:
        write(s)
    except (OSError, ValueError) as e:
        raise StackError(f"cannot write the nfs-ganesha config: {e}") from e


def _prepare(s: Settings, name: str) -> None:
    """What a component needs in place just before it starts."""
    if name == "ganesha-dbus":
        if pid_of(s, "ganesha") is not None:
            _stop(s, "ganesha")  # it cannot re-attach to a new bus: restarted next
        _config(gc.write_dbus_config, s)
    elif name == "ganesha":
        _check_nfs_port(s)
        ensure_rpcbind()
        _config(gc.write_main_config, s)


def _wait_ready(s: Settings, name: str) -> None:
    check, timeout = READY[name]
    _wait_healthy(s, name, lambda: check(s), timeout)


def ensure_component(settings: Settings | None, name: str) -> int:
    """Start one component unless it runs, and wait until it is ready; returns its pid.
    up() does the same for each; tests start parts of the stack with it."""
    s = _resolve(settings)
    comp = _find(s, name)
    if comp is None:
        raise StackError(f"no component {name!r}")
    if pid_of(s, name) is None:
        _prepare(s, name)
        _start(s, comp)
    if name in READY:
        _wait_ready(s, name)
    pid = pid_of(s, name)
    if pid is None:
        raise _fail(s, name, "exited during start-up")
    return pid


def stop_component(settings: Settings | None, name: str) -> None:
    """SIGTERM (SIGKILL after STOP_TIMEOUT) and wait; nothing if it is not running."""
    _stop(_resolve(settings), name)


def _all_healthy(s: Settings) -> bool:
    names = [c.name for c in components(s)]
    return (all(pid_of(s, n) is not None for n in names)
            and (s.libvirt_uri.startswith("test:") or libvirt_ok())
            and temporal_ok(s) and api_ok(s)
            and all(check(s) for n, (check, _) in READY.items() if n in names))


def up(settings: Settings | None = None) -> None:
    """Start whatever is not running and return when the stack is healthy."""
    s = _resolve(settings)
    with _lock(s):
        if _all_healthy(s):
            print("vmflow: already up", flush=True)
            _summary(s)
            return
        print(f"vmflow: starting the stack in {s.home}", flush=True)
        s.home.mkdir(parents=True, exist_ok=True)
        ensure_libvirt(s)
        ensure_guest(s)
        _bootstrap(s)
        comps = components(s)
        started: dict[str, float] = {}
        for comp in comps:
            if pid_of(s, comp.name) is None:
                _prepare(s, comp.name)
                _start(s, comp)
                started[comp.name] = time.monotonic()
            if comp.name == "temporal":  # workers and the API need it from the start
                _wait_healthy(s, "temporal", lambda: temporal_ok(s), TEMPORAL_TIMEOUT)
            elif comp.name in READY:  # the storage worker needs ganesha on its bus
                _wait_ready(s, comp.name)
        _wait_healthy(s, "api", lambda: api_ok(s), API_TIMEOUT)
        for comp in comps:  # workers have no health check: alive after a grace period
            if comp.name in started and comp.name not in ("temporal", "api", *READY):
                time.sleep(max(0.0, started[comp.name] + WORKER_GRACE - time.monotonic()))
            if pid_of(s, comp.name) is None:
                raise _fail(s, comp.name, "exited during start-up")
    _summary(s)


def down(settings: Settings | None = None) -> None:
    """Stop this home's components in reverse start order; state and libvirtd stay."""
    s = _resolve(settings)
    with _lock(s):
        known = [c.name for c in reversed(components(s))]
        # pid files of components no longer configured (say, a second hypervisor)
        others = sorted(p.stem for p in s.run_dir.glob("*.pid") if p.stem not in known)
        for name in others + known:
            _stop(s, name)
        _unmount_storage(s)


def _unmount_storage(s: Settings) -> None:
    """The share mounts and the pool the storage worker made: with ganesha and the
    worker stopped nothing uses them, and the next start mounts them again. Deepest
    first; a loop mount's device goes with its last unmount (autoclear)."""
    root = str(s.storage_dir.resolve()) + "/"
    points = [point for _, point in mountinfo.mounts() if point.startswith(root)]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", point], capture_output=True)


def status(settings: Settings | None = None) -> dict:
    s = _resolve(settings)
    names = [c.name for c in components(s)]
    names += sorted(p.stem for p in s.run_dir.glob("*.pid") if p.stem not in names)
    comps = {n: {"pid": pid_of(s, n), "log": str(log_file(s, n))} for n in names}
    for info in comps.values():
        info["running"] = info["pid"] is not None
    if comps["temporal"]["running"]:
        comps["temporal"]["healthy"] = temporal_ok(s)
    if comps["api"]["running"]:
        comps["api"]["healthy"] = api_ok(s)
    for name, (check, _) in READY.items():
        if comps.get(name, {}).get("running"):
            comps[name]["healthy"] = check(s)
    return {
        "home": str(s.home),
        "api_url": s.base_url,
        "temporal_ui_url": f"http://127.0.0.1:{s.temporal_ui_port}",
        "admin_token_file": str(s.admin_token_file),
        "libvirt": {"running": libvirt_ok()},
        "rpcbind": {"running": rpcbind_ok()},
        "components": comps,
    }


def _summary(s: Settings) -> None:
    print(f"  API:             {s.base_url}\n"
          f"  Temporal Web UI: http://127.0.0.1:{s.temporal_ui_port}\n"
          f"  Admin token:     {s.admin_token_file}\n"
          f"  Logs:            {s.log_dir}/", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vmflow.stack")
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--json", action="store_true", help="status as JSON")
    args = parser.parse_args(argv)
    s = get_settings()
    try:
        if args.command == "up":
            up(s)
        elif args.command == "down":
            down(s)
        else:
            st = status(s)
            if args.json:
                print(json.dumps(st, indent=2))
            else:
                print(f"libvirt ({SYSTEM_URI}): {'up' if st['libvirt']['running'] else 'down'}")
                print(f"rpcbind: {'up' if st['rpcbind']['running'] else 'down'}")
                for name, info in st["components"].items():
                    state = "running" if info["running"] else "stopped"
                    if info.get("healthy") is False:
                        state = "unhealthy"
                    print(f"{name:<24} {state:<10} pid {info['pid'] or '-'}")
            return 0 if all(c["running"] for c in st["components"].values()) else 3
    except StackError as e:
        print(f"vmflow: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

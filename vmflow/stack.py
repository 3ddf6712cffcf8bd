"""The embedded stack behind `make up`: libvirt, the tiny guest, bootstrap, then a
Temporal dev server, the control worker, the hypervisor worker(s), the storage side
(vmflow.stack_storage) and the API, each a background process with
`$VMFLOW_HOME/run/<name>.pid` and `$VMFLOW_HOME/log/<name>.log` (vmflow.processes).
This module holds the component list and up / down / status / main.

Everything comes from the Settings passed in (nothing is read at import time), so a
test session can run a private stack on its own home and ports:
`up(Settings(home=tmp, api_port=18774, temporal_address="127.0.0.1:17233", ...))`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from vmflow import clouds, hostbed, storage_netns, worker_metrics
from vmflow.processes import (
    BIN,
    REPO,
    Component,
    StackError,
    cmdline,
    fail,
    lock,
    log_file,
    read_pid,
    resolve,
    run_ok,
    running_pid,
    signal_group,
    spawn,
    terminate,
    wait_gone,
    wait_healthy,
)
from vmflow.processes import stack_env as stack_env  # callers know it from here
from vmflow.settings import Settings, get_settings
from vmflow.stack_storage import (
    READY,
    ensure_netns,
    prepare,
    storage_components,
    unmount_storage,
    wait_ready,
)

GUEST_SCRIPT = REPO / "vmflow" / "setup" / "build-tiny-guest.sh"
SYSTEM_URI = "qemu:///system"

LIBVIRT_TIMEOUT = 90.0  # first start probes QEMU capabilities: ~8 s on a quiet machine
TEMPORAL_TIMEOUT = 60.0
API_TIMEOUT = 60.0
WORKER_GRACE = 3.0  # a worker that cannot import or connect dies within this


# ---- what the stack is made of --------------------------------------------------------


def hypervisor_hosts(s: Settings) -> list[tuple[str, str]]:
    """(component name, host) for each hypervisor worker: `hypervisor` for the first
    host (settings.host), `hypervisor-<host>` for the others (VMFLOW_HOSTS=N)."""
    names = hostbed.host_names(s)
    return [("hypervisor", names[0])] + [(f"hypervisor-{h}", h) for h in names[1:]]


def hypervisor_component(s: Settings, host: str) -> str:
    """The name of the component that runs `host`'s hypervisor worker."""
    return next(name for name, h in hypervisor_hosts(s) if h == host)


def worker_env(s: Settings, host: str) -> tuple[tuple[str, str], ...]:
    """A hypervisor worker's own settings: its host, and that host's libvirt, network
    namespace and underlay address (vmflow.hostbed)."""
    if not hostbed.namespaced(s):
        return (("VMFLOW_HOST", host),)
    return tuple(hostbed.host(s, host).env().items())


def components(s: Settings) -> list[Component]:
    """In start order; `down` stops them in reverse."""
    py = str(BIN / "python")
    port = str(s.temporal_port)
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
                # a control step is handed to the control worker in the reply to the
                # workflow task that scheduled it, not through another poll
                "--dynamic-config-value", "system.enableActivityEagerExecution=true",
                "--ui-disable-news-fetch", "--log-level", "warn")  # fmt: skip
    comps = [
        Component("temporal", temporal, markers=("start-dev", db, port)),
        Component("control", (py, "-m", "workers.control"), ("-m", "workers.control")),
    ]
    for name, host in hypervisor_hosts(s):
        comps.append(Component(name, (py, "-m", "workers.hypervisor"),
                               ("-m", "workers.hypervisor"), env=worker_env(s, host)))
    comps += storage_components(s) if s.storage_hosts else []
    comps.append(Component("api", (py, "-m", "api"), ("-m", "api")))
    return comps


def _find(s: Settings, name: str) -> Component | None:
    return next((c for c in components(s) if c.name == name), None)


def pid_of(s: Settings, name: str) -> int | None:
    """The pid of a running component of this stack, else None."""
    s = resolve(s)
    return running_pid(s, name, _find(s, name))


def kill_component(s: Settings, name: str, sig: int = signal.SIGKILL) -> int | None:
    """Send `sig` to a running component (for tests that crash a worker). Returns the
    pid, or None if it was not running. After SIGKILL, returns once it is gone."""
    s = resolve(s)
    pid = pid_of(s, name)
    if pid is None:
        return None
    signal_group(pid, sig)
    if sig == signal.SIGKILL:
        wait_gone(s, pid, 5.0)
    return pid


# ---- health ---------------------------------------------------------------------------


def libvirt_ok() -> bool:
    return run_ok(["virsh", "-c", SYSTEM_URI, "version"]) is not None


def temporal_ok(s: Settings) -> bool:
    r = run_ok([str(BIN / "temporal"), "operator", "cluster", "health",
                "--address", s.temporal_address], timeout=5.0)
    return r is not None and "SERVING" in r.stdout


def api_ok(s: Settings) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{s.api_port}/healthz", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


# ---- the steps before the components --------------------------------------------------


def _daemon_running(name: str) -> bool:
    pid = read_pid(Path(f"/run/{name}.pid"))
    cmd = cmdline(pid) if pid is not None else []
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
            raise fail(s, "libvirtd", f"does not answer on {SYSTEM_URI}",
                       Path("/var/log/libvirt/libvirtd.log"))
        time.sleep(0.3)
    print(f"  libvirt: started ({time.monotonic() - t0:.1f} s)", flush=True)


def ensure_hosts(s: Settings) -> None:
    """The stack's hypervisor hosts, each its own libvirtd in its own namespaces."""
    if not hostbed.namespaced(s):
        return
    t0 = time.monotonic()
    for h in hostbed.bed(s):
        if h.pid("libvirtd") is None:
            hostbed.start(s, h)
            print(f"  host {h.name}: {h.libvirt_uri} ({time.monotonic() - t0:.1f} s)",
                  flush=True)
        else:
            hostbed.start(s, h)  # its links, should a crash have left them half-made


def hosts_ok(s: Settings) -> bool:
    return all(run_ok(["virsh", "-c", h.libvirt_uri, "uri"]) is not None
               for h in hostbed.bed(s)) if hostbed.namespaced(s) else True


def ensure_guest(s: Settings) -> None:
    """The tiny guest image (a no-op once built by this version of the script: its
    stamp is the script's checksum, so a changed guest is rebuilt)."""
    done = s.guest_cache / ".done"
    if done.exists() and done.read_text().strip() == hashlib.sha256(
            GUEST_SCRIPT.read_bytes()).hexdigest():
        return
    print(f"  tiny guest: building in {s.guest_cache}", flush=True)
    r = subprocess.run([str(GUEST_SCRIPT), str(s.guest_cache)], capture_output=True, text=True)
    if r.returncode != 0:
        raise StackError(f"building the tiny guest failed:\n{r.stdout}{r.stderr}")


def _bootstrap(s: Settings) -> None:
    from vmflow.bootstrap import bootstrap  # heavy imports (sqlmodel, alembic): only here

    bootstrap(s)


# ---- one component, the whole stack ---------------------------------------------------


def ensure_component(settings: Settings | None, name: str) -> int:
    """Start one component unless it runs, and wait until it is ready; returns its pid.
    up() does the same for each; tests start parts of the stack with it."""
    s = resolve(settings)
    comp = _find(s, name)
    if comp is None:
        raise StackError(f"no component {name!r}")
    if pid_of(s, name) is None:
        prepare(s, name)
        spawn(s, worker_metrics.with_port(s, comp))
    if name in READY:
        wait_ready(s, comp)
    pid = pid_of(s, name)
    if pid is None:
        raise fail(s, name, "exited during start-up")
    return pid


def stop_component(settings: Settings | None, name: str) -> None:
    """SIGTERM (SIGKILL after STOP_TIMEOUT) and wait; nothing if it is not running."""
    s = resolve(settings)
    terminate(s, name, _find(s, name))


def stop_storage(settings: Settings | None = None) -> None:
    """The storage side's processes (reverse start order), its mounts and its network
    namespace: for callers that started parts of it with ensure_component (tests)."""
    s = resolve(settings)
    for comp in reversed(storage_components(s)):
        terminate(s, comp.name, comp)
    unmount_storage(s)
    storage_netns.remove(s)


def _all_healthy(s: Settings) -> bool:
    names = [c.name for c in components(s)]
    return (all(pid_of(s, n) is not None for n in names)
            and hosts_ok(s)
            and temporal_ok(s) and api_ok(s)
            and all(check(s) for n, (check, _) in READY.items() if n in names))


def up(settings: Settings | None = None, user_clouds: Path | None = None) -> None:
    """Start whatever is not running and return when the stack is healthy. The
    OpenStack tools' clouds.yaml goes to the home and, if given, `user_clouds`."""
    s = resolve(settings)
    with lock(s):
        if _all_healthy(s):
            print("vmflow: already up", flush=True)
            _summary(s, _write_clouds(s, user_clouds))
            return
        print(f"vmflow: starting the stack in {s.home}", flush=True)
        s.home.mkdir(parents=True, exist_ok=True)
        ensure_hosts(s)
        if s.storage_hosts:  # its underlay port too, should a crash have left it half-made
            ensure_netns(s)
        ensure_guest(s)
        _bootstrap(s)
        written = _write_clouds(s, user_clouds)
        comps = components(s)
        started: dict[str, float] = {}
        for comp in comps:
            if pid_of(s, comp.name) is None:
                prepare(s, comp.name)
                spawn(s, worker_metrics.with_port(s, comp))
                started[comp.name] = time.monotonic()
            if comp.name == "temporal":  # workers and the API need it from the start
                wait_healthy(s, "temporal", comp, lambda: temporal_ok(s), TEMPORAL_TIMEOUT)
            elif comp.name in READY:  # the storage worker needs ganesha on its bus
                wait_ready(s, comp)
        wait_healthy(s, "api", _find(s, "api"), lambda: api_ok(s), API_TIMEOUT)
        for comp in comps:  # workers have no health check: alive after a grace period
            if comp.name in started and comp.name not in ("temporal", "api", *READY):
                time.sleep(max(0.0, started[comp.name] + WORKER_GRACE - time.monotonic()))
            if pid_of(s, comp.name) is None:
                raise fail(s, comp.name, "exited during start-up")
    _summary(s, written)


def _write_clouds(s: Settings, user_clouds: Path | None) -> list[Path]:
    """The `vmflow` cloud (admin token, Keystone facade) for OS_CLOUD=vmflow; a user's
    clouds.yaml vmflow did not write is left alone. None without an admin token."""
    if not s.admin_token_file.exists():
        return []
    text = clouds.render(s.base_url, s.admin_token_file.read_text().strip())
    return [p for p in (s.home / "clouds.yaml", user_clouds) if p and clouds.write(p, text)]


def down(settings: Settings | None = None) -> None:
    """Stop this home's components in reverse start order; state and libvirtd stay."""
    s = resolve(settings)
    with lock(s):
        known = [c.name for c in reversed(components(s))]
        # pid files of components no longer configured (say, a second hypervisor)
        others = sorted(p.stem for p in s.run_dir.glob("*.pid") if p.stem not in known)
        for name in others + known:
            terminate(s, name, _find(s, name))
        unmount_storage(s)
        storage_netns.remove(s)
        hostbed.stop_all(s)


def status(settings: Settings | None = None) -> dict:
    s = resolve(settings)
    names = [c.name for c in components(s)]
    names += sorted(p.stem for p in s.run_dir.glob("*.pid") if p.stem not in names)
    comps = {n: {"pid": pid_of(s, n), "log": str(log_file(s, n))} for n in names}
    ports = worker_metrics.recorded_ports(s)
    for name, info in comps.items():
        info["running"] = info["pid"] is not None
        if info["running"] and name in ports:
            info["metrics"] = worker_metrics.url(ports[name])
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
        "hosts": {h.name: {"running": h.pid("libvirtd") is not None,
                           "libvirt_uri": h.libvirt_uri, "netns": h.netns,
                           "underlay": h.address} for h in hostbed.bed(s)},
        "storage_netns": {"name": storage_netns.name(s), "exists": storage_netns.exists(s),
                          "addresses": storage_netns.addresses(s)},
        "components": comps,
    }


def _os_env(s: Settings, cloud_files: list[Path]) -> str:
    """How to point the OpenStack tools at this stack: OS_CLOUD alone when a clouds.yaml
    they read by default was written, else with the home's file named."""
    if not cloud_files:
        return "no clouds.yaml (no admin token)"
    if any(p != s.home / "clouds.yaml" for p in cloud_files):
        return f"OS_CLOUD={clouds.CLOUD} (clouds.yaml: {', '.join(map(str, cloud_files))})"
    return f"OS_CLIENT_CONFIG_FILE={s.home / 'clouds.yaml'} OS_CLOUD={clouds.CLOUD}"


def _database(s: Settings) -> str:
    """The database the stack runs on, its password hidden: which one a `make up` without
    (or with another) VMFLOW_DATABASE_URL used is plain to see."""
    from sqlalchemy.engine import make_url

    return make_url(s.db_url).render_as_string(hide_password=True)


def _summary(s: Settings, cloud_files: list[Path]) -> None:
    print(f"  API:             {s.base_url}\n"
          f"  Database:        {_database(s)}\n"
          f"  Temporal Web UI: http://127.0.0.1:{s.temporal_ui_port}\n"
          f"  Admin token:     {s.admin_token_file}\n"
          f"  OpenStack:       {_os_env(s, cloud_files)}\n"
          f"  Logs:            {s.log_dir}/", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vmflow.stack")
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--json", action="store_true", help="status as JSON")
    args = parser.parse_args(argv)
    s = get_settings()
    try:
        if args.command == "up":
            up(s, user_clouds=clouds.USER_FILE)
        elif args.command == "down":
            down(s)
        else:
            st = status(s)
            if args.json:
                print(json.dumps(st, indent=2))
            else:
                for name, h in st["hosts"].items():
                    print(f"host {name:<19} {'up' if h['running'] else 'down':<10} "
                          f"{h['libvirt_uri']}")
                sn = st["storage_netns"]
                if sn["exists"]:
                    print(f"storage netns {sn['name']:<11} {' '.join(sn['addresses'])}")
                for name, info in st["components"].items():
                    state = "running" if info["running"] else "stopped"
                    if info.get("healthy") is False:
                        state = "unhealthy"
                    metrics = f"  metrics {info['metrics']}" if "metrics" in info else ""
                    print(f"{name:<24} {state:<10} pid {info['pid'] or '-'}{metrics}")
            return 0 if all(c["running"] for c in st["components"].values()) else 3
    except StackError as e:
        print(f"vmflow: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

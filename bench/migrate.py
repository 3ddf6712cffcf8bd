"""Moving a guest between two hosts: vmflow's live migration through its API against
a direct libvirt migrateToURI3 of the same guest with the same flags, alternating,
with the guest's own write stall for both; then cold migrate + confirm and shelve +
unshelve onto the other host, through the API.

    .venv/bin/python bench/migrate.py [--rounds 5] [--poll 0.05]    # or: make bench-migrate

Starts a private two-host stack (vmflow.hostbed: two namespaced libvirtds joined by
an underlay; home under /var/tmp, free ports, host names of this run's own), launches
one tiny guest and moves it back and forth. Prints a table against the targets (live
≤ 1.15x direct, stall ≤ 0.2 s) and writes bench/results/migrate.json and migrate.png.
Everything it made is removed, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import libvirt
from temporalio.testing import ActivityEnvironment

from activities.hypervisor.host import HostActivities
from activities.hypervisor.libvirt import domain_xml
from activities.hypervisor.libvirt.connection import Connection
from activities.hypervisor.migrate import MigrationActivities, disks_to_copy, migration_flags
from bench.common import GUEST, PREFIX, RESULTS, wait_op
from bench.migrate_report import plot, report, stall
from bench.snapshot import Guest, host_steps
from vmflow import hostbed, stack
from vmflow.contracts.activity_names import HostActs
from vmflow.contracts.instances import ConfigDrive
from vmflow.contracts.migrations import PrepareLiveMigration
from vmflow.processes import free_port
from vmflow.settings import Settings
from workflows import registry

SETTLE_S = 1.0  # ticks before and after each move: the ticker's own rhythm
OP_TIMEOUT_S = 900


# ---- the stack ----------------------------------------------------------------------

@contextmanager
def two_host_stack() -> Iterator[tuple[Settings, httpx.Client]]:
    """A private stack with two hypervisor hosts, both up, and an admin client."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up as on Ctrl-C
    home = Path(tempfile.mkdtemp(prefix="vmflow-bench-", dir="/var/tmp"))
    home.chmod(0o755)  # qemu must traverse to the disks
    # host names of this run's own: they name the hosts' network namespaces; the
    # background reconcilers are held off, since the direct side moves the guest
    # behind vmflow's back for one leg of each pair
    s = Settings(home=home, api_port=free_port(), temporal_address=f"127.0.0.1:{free_port()}",
                 temporal_ui_port=free_port(), host=f"bm{os.getpid()}", hosts=2,
                 storage_hosts=0, domain_prefix=PREFIX, guest_cache=GUEST,
                 power_sync_interval=86400, reconcile_interval=86400)
    try:
        stack.ensure_guest(s)
        stack.up(s)
        token = s.admin_token_file.read_text().strip()
        with httpx.Client(base_url=s.base_url, timeout=30,
                          headers={"Authorization": f"Bearer {token}"}) as api:
            wait_hosts_up(api, hostbed.host_names(s))
            yield s, api
    finally:
        try:
            stack.down(s)  # powers both hosts off (their guests die), deletes namespaces
        finally:
            shutil.rmtree(home, ignore_errors=True)


def wait_hosts_up(api: httpx.Client, names: list[str], timeout: float = 120) -> None:
    deadline, shown = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        shown = {h["name"]: h["state"] for h in api.get("/v1/hosts").json()["hosts"]}
        if all(shown.get(n) == "up" for n in names):
            return
        time.sleep(0.5)
    raise RuntimeError(f"hosts {names} not all up after {timeout:.0f} s: {shown}")


class Bed:
    """One libvirt connection per host; the guest looked up where it runs."""

    def __init__(self, s: Settings):
        self.s = s
        self.conns = {h.name: Connection(h.libvirt_uri) for h in hostbed.bed(s)}

    def dom(self, host: str, sid: str) -> libvirt.virDomain:
        return self.conns[host].get().lookupByUUIDString(sid)

    def other(self, host: str) -> str:
        (dest,) = set(self.conns) - {host}
        return dest


# ---- the guest's ticker around one move ---------------------------------------------

def ticked(guest: Guest, bed: Bed, sid: str, move: Callable[[], dict[str, Any]],
           dest: str) -> dict[str, Any]:
    """Run `move` with the guest's tickers on (snapshot.py's: /proc/uptime appended every
    ~10 ms to /root and to a tmpfs); the guest's clock against the host's before and
    after, since a paused guest's clock stands still (bench/migrate_report.stall)."""
    started = time.time()
    guest.start_tickers()
    off0 = guest.clock()
    time.sleep(SETTLE_S)
    t0 = time.time()
    result = move()
    span = (t0, time.time())
    guest.dom = bed.dom(dest, sid)
    time.sleep(SETTLE_S)
    ticks = guest.stop_tickers()
    off1 = guest.clock()
    return {"started": started, **result, **stall(ticks, off0, off1, span)}


# ---- (a) vmflow through the API -----------------------------------------------------

def act(api: httpx.Client, sid: str, body: dict[str, Any], poll: float) -> tuple[float, Any]:
    """POST the action, poll its operation to the end: (seconds from the POST, op)."""
    t0 = time.monotonic()
    r = api.post(f"/v1/servers/{sid}/action", json=body)
    if r.status_code != 202:
        raise RuntimeError(f"{body}: {r.status_code} {r.text}")
    op = wait_op(api, r.json()["operation"]["id"], every=poll, timeout=OP_TIMEOUT_S)
    seconds = time.monotonic() - t0
    if op["status"] != "succeeded":
        raise RuntimeError(f"{body} ended {op['status']}: {op.get('last_error') or op}")
    return seconds, op


def vmflow_live(s: Settings, api: httpx.Client, bed: Bed, sid: str, dest: str,
                poll: float) -> dict[str, Any]:
    seconds, op = act(api, sid, {"os-migrateLive": {"host": dest, "block_migration": "auto"}},
                      poll)
    host = api.get(f"/v1/servers/{sid}").raise_for_status().json()["host"]
    if host != dest:
        raise RuntimeError(f"the live migration ended with the server on {host}, not {dest}")
    step = asyncio.run(host_steps(s, op)).get(HostActs.LIVE_MIGRATE, {})
    return {"seconds": seconds,
            "migrate_step_s": step["end"] - step["start"] if "end" in step else None,
            "downtime_ms": downtime(bed, dest, sid)}


# ---- (b) the same move straight on libvirt ------------------------------------------

def downtime(bed: Bed, host: str, sid: str) -> int | None:
    """libvirt's own figure: the destination keeps the incoming job's completed stats."""
    try:
        done = bed.dom(host, sid).jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
    except libvirt.libvirtError:
        return None
    return int(done["downtime"]) if "downtime" in done else None


def set_downtime(dom: libvirt.virDomain, ms: int, stop: threading.Event) -> None:
    """As vmflow's migration step does: the maximum downtime, once the job accepts it."""
    while not stop.wait(0.1):
        try:
            dom.migrateSetMaxDowntime(ms, 0)
            return
        except libvirt.libvirtError:
            continue


def config_drive(sid: str, iso: str | None) -> ConfigDrive | None:
    """The same contents as the source's config drive (the destination writes its own)."""
    if iso is None:
        return None

    def read(name: str) -> bytes:
        return subprocess.run(["isoinfo", "-R", "-i", iso, "-x", f"/openstack/latest/{name}"],
                              capture_output=True, check=True).stdout

    user_data = read("user_data")
    return ConfigDrive(sid, read("meta_data.json").decode(),
                       base64.b64encode(user_data).decode() if user_data else None)


def direct_live(s: Settings, bed: Bed, sid: str, src: str, dest: str,
                base_format: str) -> dict[str, Any]:
    """What vmflow's host steps do for a live migration, minus Temporal and the database:
    the base images' cache entries checked on the destination (vmflow's fetch step on a
    warm cache), the destination prepared by vmflow's own prepare_live_migration (empty
    overlay over the same base, domain.json), migrateToURI3 with vmflow's flags and
    relocated XML from the source, the source's files removed."""
    t0 = time.monotonic()
    src_dir, src_cache = s.host_dir(src) / "instances" / sid, s.host_dir(src) / "cache"
    host = HostActivities(s.model_copy(update={"host": dest}), bed.conns[dest])
    spec = json.loads((src_dir / "domain.json").read_text())  # the source's DefineDomain
    dom = bed.dom(src, sid)
    live = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_MIGRATABLE)
    # the running qemu holds the overlay's lock: its base and size from libvirt
    base = ET.fromstring(dom.XMLDesc(0)).find("./devices/disk/backingStore/source")
    if base is None:
        raise RuntimeError(f"{sid}'s root disk shows no backing file")
    size_gb = dom.blockInfo(spec["disk_path"])[0] // 2**30

    def moved(path: str | None) -> str | None:
        if path is None:
            return None
        there = host.cache_dir / Path(path).relative_to(src_cache)
        if not there.with_suffix(".verified").exists():
            raise RuntimeError(f"{there} is not in {dest}'s cache (vmflow's leg goes first)")
        return str(there)

    req = PrepareLiveMigration(
        sid, moved(base.get("file")) or "", base_format, size_gb,
        moved(spec["kernel_path"]), moved(spec["initrd_path"]), spec["cmdline"], spec["agent"],
        spec["vcpus"], spec["ram_mb"], config_drive(sid, spec["config_drive_path"]))
    dirs = ActivityEnvironment().run(MigrationActivities(host).prepare_live_migration, req)
    prepared = time.monotonic()
    relocated = {str(src_dir): dirs.instance_dir, str(src_cache): dirs.cache_dir}
    persistent = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_MIGRATABLE | libvirt.VIR_DOMAIN_XML_INACTIVE)
    params = {libvirt.VIR_MIGRATE_PARAM_DEST_XML: domain_xml.relocate(live, relocated),
              libvirt.VIR_MIGRATE_PARAM_PERSIST_XML: domain_xml.relocate(persistent, relocated),
              libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS: disks_to_copy(live)}
    stop = threading.Event()
    setter = threading.Thread(target=set_downtime,
                              args=(dom, s.live_migration_downtime_ms, stop), daemon=True)
    setter.start()
    try:
        dom.migrateToURI3(hostbed.host(s, dest).migration_uri, params, migration_flags(True))
    finally:
        stop.set()
        setter.join()
    migrated = time.monotonic()
    shutil.rmtree(src_dir)
    seconds = time.monotonic() - t0
    return {"seconds": seconds, "prepare_s": prepared - t0, "migrate_step_s": migrated - prepared,
            "downtime_ms": downtime(bed, dest, sid)}


# ---- the run ------------------------------------------------------------------------

def live_rounds(s: Settings, api: httpx.Client, bed: Bed, sid: str, home_host: str,
                base_format: str, rounds: int, poll: float) -> dict[str, list[dict[str, Any]]]:
    """Each round: a pair of moves there and back by each side, which goes first
    alternating (vmflow first in round 1: its fetch warms the other host's cache). A
    pair ends where it began, so the database is right again after the direct pair."""
    guest = Guest(bed.dom(home_host, sid))
    out: dict[str, list[dict[str, Any]]] = {"vmflow": [], "direct": []}
    for n in range(1, rounds + 1):
        order = ("vmflow", "direct") if n % 2 else ("direct", "vmflow")
        for kind in order:
            for src in (home_host, bed.other(home_host)):
                dest = bed.other(src)
                move = (partial(vmflow_live, s, api, bed, sid, dest, poll) if kind == "vmflow"
                        else partial(direct_live, s, bed, sid, src, dest, base_format))
                leg = {"round": n, "side": kind, "from": src, "to": dest,
                       **ticked(guest, bed, sid, move, dest), "loadavg_1m": os.getloadavg()[0]}
                out[kind].append(leg)
                print(f"round {n} {kind:>6} {src} → {dest}: {leg['seconds']:.2f} s, "
                      f"stall {leg['stall_s']:.3f} s (guest gap {leg['guest_gap_s']:.3f} + "
                      f"clock stood {leg['clock_shift_s']:.3f}; libvirt downtime "
                      f"{leg['downtime_ms']} ms)", flush=True)
    return out


def cold_rounds(api: httpx.Client, bed: Bed, sid: str, host: str, rounds: int,
                poll: float) -> list[dict[str, Any]]:
    out = []
    for n in range(1, rounds + 1):
        dest = bed.other(host)
        move_s, _ = act(api, sid, {"migrate": {"host": dest}}, poll)
        confirm_s, _ = act(api, sid, {"confirmResize": None}, poll)
        out.append({"round": n, "from": host, "to": dest, "seconds": move_s + confirm_s,
                    "migrate_s": move_s, "confirm_s": confirm_s})
        print(f"round {n}  cold migrate {host} → {dest}: {move_s:.2f} s + confirm "
              f"{confirm_s:.2f} s", flush=True)
        host = dest
    return out


def shelve_rounds(api: httpx.Client, bed: Bed, sid: str, host: str, rounds: int,
                  poll: float) -> list[dict[str, Any]]:
    out = []
    for n in range(1, rounds + 1):
        dest = bed.other(host)
        shelve_s, _ = act(api, sid, {"shelve": None}, poll)  # offloaded at once (time 0)
        status = api.get(f"/v1/servers/{sid}").raise_for_status().json()["status"]
        unshelve_s, _ = act(api, sid, {"unshelve": {"host": dest}}, poll)
        out.append({"round": n, "from": host, "to": dest, "seconds": shelve_s + unshelve_s,
                    "shelve_s": shelve_s, "unshelve_s": unshelve_s, "shelved_status": status})
        print(f"round {n}  shelve {shelve_s:.2f} s ({status}) + unshelve onto {dest} "
              f"{unshelve_s:.2f} s", flush=True)
        host = dest
    return out


def cold_migrate_available() -> bool:
    return any(w.__name__ == "ResizeInstance" for w in registry.ALL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5,
                        help="rounds of each kind (a live round is a pair there and back)")
    parser.add_argument("--poll", type=float, default=0.05,
                        help="seconds between GET /v1/operations/{id}")
    args = parser.parse_args()
    with two_host_stack() as (s, api):
        bed = Bed(s)
        r = api.post("/v1/servers", json={"name": "bench-migrate", "image": "tiny",
                                          "flavor": "t1.micro"}).raise_for_status()
        sid: str = r.json()["server"]["id"]
        if wait_op(api, r.json()["operation"]["id"], every=0.5, timeout=900,
                   say="launch")["status"] != "succeeded":
            raise RuntimeError(f"launch of {sid} failed")
        home_host = api.get(f"/v1/servers/{sid}").raise_for_status().json()["host"]
        virt_type = bed.conns[home_host].virt_type(s.virt_type)
        tiny = next(i for i in api.get("/v1/images").raise_for_status().json()["images"]
                    if i["name"] == "tiny")
        live = live_rounds(s, api, bed, sid, home_host, tiny["disk_format"], args.rounds,
                           args.poll)
        cold = (cold_rounds(api, bed, sid, home_host, args.rounds, args.poll)
                if cold_migrate_available() else None)
        host = api.get(f"/v1/servers/{sid}").raise_for_status().json()["host"]
        shelve = shelve_rounds(api, bed, sid, host, args.rounds, args.poll)
        result = report(live, cold, shelve, virt_type)
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "migrate.json").write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nwrote {RESULTS / 'migrate.json'}")
        plot(result, RESULTS / "migrate.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Many at once: N launches through the API against N guests booted at once by a
direct libvirt script, then N snapshots against N `qemu-img convert -t none`, then a
mixed workload (launches, snapshots and deletes at once), for N = 1, 5, 10, 20.

    .venv/bin/python bench/concurrency.py [--ns 1,5,10,20] [--poll 0]

Starts a private stack (home under /var/tmp, free ports). Per N, one side runs its
three phases, removes what it made, then the other side (which goes first alternates
with N). Prints wall time and p50/p95 per operation for both and the ratio
wall(vmflow) / wall(direct) per phase against the launch target (≤ 1.2x); writes
bench/results/concurrent.json and concurrent.png (latency CDFs per N, when matplotlib
is installed). Everything it made is removed, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
import libvirt

from activities.hypervisor.libvirt.connection import Connection
from bench import snapshot_baseline
from bench.common import PREFIX, RESULTS, private_stack, wait_op
from bench.concurrent_report import plot, summarize
from bench.direct import Booted, Direct
from bench.snapshot import wall
from vmflow.settings import Settings
from vmflow.temporal import connect

T = TypeVar("T")
OP_TIMEOUT_S = 240.0  # per operation, plus PER_GUEST_S for each guest at once
PER_GUEST_S = 30.0
AGENT_TIMEOUT_S = 900.0  # 20 TCG guests booting at once on 2 cores take minutes


def at_once(calls: Sequence[Callable[[], T]]) -> list[T]:
    """Run each call in a thread of its own, all started together; their results."""
    if not calls:
        return []
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return [f.result() for f in [pool.submit(c) for c in calls]]


def timed(kind: str, call: Callable[[], Any]) -> dict[str, Any]:
    """One direct operation: its start and end (wall clock) and what it returned."""
    start = time.time()
    try:
        out, error = call(), None
    except (libvirt.libvirtError, subprocess.SubprocessError, OSError,
            RuntimeError) as e:
        out, error = None, str(e)
    return {"kind": kind, "start": start, "end": time.time(), "out": out, "error": error}


# ---- vmflow: through the API ---------------------------------------------------------

class Vmflow:
    """Each call opens its own client (threads), POSTs, then waits for the operation's
    workflow to close on Temporal's long poll (poll 0, the default: no load while it
    waits, as bench/launch.py) or polls GET /v1/operations/{id} every `poll` s (each a
    database read, a describe and a query: at 0.5 s, 20 operations cost the API about
    half a core); an operation's end is its own `finished_at` either way."""

    def __init__(self, s: Settings, api: httpx.Client, poll: float, timeout: float):
        self.s, self.base_url, self.headers = s, s.base_url, dict(api.headers)
        self.poll, self.timeout = poll, timeout

    def _until_closed(self, op_id: str, api: httpx.Client) -> None:
        try:
            op = api.get(f"/v1/operations/{op_id}").raise_for_status().json()
        except httpx.TransportError:  # no answer in time: the patient poll takes over
            return

        async def closed() -> None:
            handle = (await connect(self.s)).get_workflow_handle(op["workflow_id"],
                                                                run_id=op["run_id"])
            with contextlib.suppress(Exception):  # failed: the operation row says how
                await asyncio.wait_for(handle.result(), self.timeout)
        if op["status"] == "running" and op.get("workflow_id"):
            asyncio.run(closed())

    def _op(self, kind: str, send: Callable[[httpx.Client], dict[str, Any]]) -> dict[str, Any]:
        start = time.time()
        with httpx.Client(base_url=self.base_url, headers=self.headers, timeout=60) as api:
            try:
                body = send(api)
            except httpx.HTTPError as e:  # no answer in 60 s: counted, the run goes on
                return {"kind": kind, "start": start, "end": time.time(), "out": None,
                        "error": f"{kind} request: {type(e).__name__} {e}"}
            try:
                if not self.poll:
                    self._until_closed(body["operation"]["id"], api)
                op = wait_op(api, body["operation"]["id"], every=self.poll or 0.2,
                             timeout=self.timeout, patient=True)
            except RuntimeError as e:
                return {"kind": kind, "start": start, "end": time.time(), "out": body,
                        "error": str(e)}
        error = None if op["status"] == "succeeded" else f"{op['status']}: {op['last_error']}"
        end = wall(op["finished_at"]) if op.get("finished_at") else time.time()
        return {"kind": kind, "start": start, "end": end, "out": body, "error": error}

    def launch(self, name: str) -> dict[str, Any]:
        return self._op("launch", lambda api: api.post("/v1/servers", json={
            "name": name, "image": "tiny", "flavor": "t1.micro"}).raise_for_status().json())

    def snapshot(self, server_id: str, name: str) -> dict[str, Any]:
        return self._op("snapshot", lambda api: api.post(
            f"/v1/servers/{server_id}/action",
            json={"createImage": {"name": name}}).raise_for_status().json())

    def delete(self, server_id: str) -> dict[str, Any]:
        return self._op("delete", lambda api: api.delete(
            f"/v1/servers/{server_id}").raise_for_status().json())


def vmflow_side(vm: Vmflow, api: httpx.Client, n: int) -> dict[str, list[dict[str, Any]]]:
    half = math.ceil(n / 2)
    launched = at_once([partial(vm.launch, f"cc{n}-{i}") for i in range(n)])
    servers = [r["out"]["server"]["id"] for r in launched if not r["error"]]
    snaps = at_once([partial(vm.snapshot, sid, f"cc{n}-snap-{i}")
                     for i, sid in enumerate(servers)])
    mixed = at_once(
        [partial(vm.launch, f"cc{n}-mixed-{i}") for i in range(half)]
        + [partial(vm.snapshot, sid, f"cc{n}-msnap-{i}") for i, sid in enumerate(servers[:half])]
        + [partial(vm.delete, sid) for sid in servers[half:]])
    # what is left (the first half, the mixed launches, any a request that got no
    # answer made after all: the bench's stack has no others); then its images
    left = [x["id"] for x in api.get("/v1/servers").raise_for_status().json()["servers"]
            if x["status"] != "DELETED"]
    gone = at_once([partial(vm.delete, sid) for sid in left])
    for r in snaps + mixed:
        if r["kind"] == "snapshot" and r["out"]:
            api.delete(f"/v1/images/{r['out']['image']['id']}")
    if any(r["error"] for r in gone):
        raise RuntimeError(f"vmflow: deleting its servers failed: {[r['error'] for r in gone]}")
    return {"launch": launched, "snapshot": snaps, "mixed": mixed}


# ---- direct: libvirt and qemu-img ----------------------------------------------------

def convert(guest: Booted) -> None:
    """As Nova extracts a snapshot (bench/snapshot_baseline.convert), then dropped."""
    out = guest.dir / "snapshot.qcow2"
    snapshot_baseline.convert(guest.disk, out)
    out.unlink()


def direct_side(direct: Direct, n: int) -> dict[str, list[dict[str, Any]]]:
    half = math.ceil(n / 2)
    launched = at_once([partial(timed, "launch", direct.boot) for _ in range(n)])
    guests: list[Booted] = [r["out"] for r in launched if r["out"]]
    snaps = at_once([partial(timed, "snapshot", partial(convert, g)) for g in guests])
    mixed = at_once(
        [partial(timed, "launch", direct.boot) for _ in range(half)]
        + [partial(timed, "snapshot", partial(convert, g)) for g in guests[:half]]
        + [partial(timed, "delete", partial(direct.remove, g)) for g in guests[half:]])
    for g in guests[:half] + [r["out"] for r in mixed if r["kind"] == "launch" and r["out"]]:
        direct.remove(g)
    for r in launched + snaps + mixed:
        r["out"] = None  # a Booted is not JSON
    return {"launch": launched, "snapshot": snaps, "mixed": mixed}


# ---- the run -------------------------------------------------------------------------

def leftover_domains(s: Settings) -> list[str]:
    conn = libvirt.open(s.libvirt_uri)
    try:
        return [d.name() for d in conn.listAllDomains() if d.name().startswith(PREFIX)]
    finally:
        conn.close()


def one_n(s: Settings, api: httpx.Client, direct: Direct, n: int, poll: float,
          vmflow_first: bool) -> dict[str, Any]:
    vm = Vmflow(s, api, poll, OP_TIMEOUT_S + PER_GUEST_S * n)
    sides: dict[str, Any] = {}
    for side in (("vmflow", "direct") if vmflow_first else ("direct", "vmflow")):
        load0 = os.getloadavg()
        t0 = time.monotonic()
        ops = vmflow_side(vm, api, n) if side == "vmflow" else direct_side(direct, n)
        sides[side] = {"phases": ops, "loadavg_before": load0, "loadavg_after": os.getloadavg(),
                       "side_s": time.monotonic() - t0}
        left = leftover_domains(s)
        if left:
            raise RuntimeError(f"{side} left domains behind: {left}")
        print(f"N={n} {side}: done in {sides[side]['side_s']:.1f} s"
              f" (load {load0[0]:.1f} → {os.getloadavg()[0]:.1f})", flush=True)
    return summarize(n, sides)


def warm_up(vm: Vmflow, direct: Direct) -> None:
    """One launch and delete through vmflow (its host's image cache, the workers'
    first imports) and the direct side's cache, before anything is timed."""
    r = vm.launch("cc-warm")
    if r["error"]:
        raise RuntimeError(f"warm-up launch failed: {r['error']}")
    if (d := vm.delete(r["out"]["server"]["id"]))["error"]:
        raise RuntimeError(f"warm-up delete failed: {d['error']}")
    direct.warm()


def kept(path: Path, ns: list[int]) -> list[dict[str, Any]]:
    """The entries of an earlier run for the Ns this run does not measure (a run of
    `--ns 10` adds N=10 to the 1 and 5 of the last); each carries its own date."""
    try:
        earlier = json.loads(path.read_text()).get("ns", [])
    except (OSError, ValueError):
        return []
    return [e for e in earlier if e.get("n") not in ns and "date" in e]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ns", default="1,5,10,20", help="guests at once, comma-separated")
    parser.add_argument("--poll", type=float, default=0.0,
                        help="seconds between GET /v1/operations/{id} per operation; "
                             "0: wait on Temporal's long poll instead")
    args = parser.parse_args()
    ns = sorted({int(x) for x in args.ns.split(",")})
    if ns[0] < 1:
        parser.error("every N must be at least 1")
    cpus = os.cpu_count() or 1
    # N guests of one vCPU on this host: the scheduler must not refuse them
    ratio = max(4.0, math.ceil(1.5 * ns[-1] / cpus) + 1)
    with private_stack(cpu_allocation_ratio=ratio, agent_timeout=AGENT_TIMEOUT_S) as (s, api):
        direct = Direct(s, Connection(s.libvirt_uri), api)
        warm_up(Vmflow(s, api, args.poll, OP_TIMEOUT_S), direct)
        date = datetime.now(UTC).isoformat(timespec="seconds")
        results = [{**one_n(s, api, direct, n, args.poll, vmflow_first=i % 2 == 0),
                    "date": date, "poll_s": args.poll}
                   for i, n in enumerate(ns)]
        path = RESULTS / "concurrent.json"
        result = {"date": date, "virt_type": direct.virt_type, "cpus": cpus,
                  "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
                                   / 2**30, 1),
                  "ns": sorted(kept(path, ns) + results, key=lambda e: e["n"])}
        RESULTS.mkdir(exist_ok=True)
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nwrote {RESULTS / 'concurrent.json'}")
        plot(result, RESULTS / "concurrent.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())

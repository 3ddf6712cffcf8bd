"""Launch-to-ACTIVE latency: vmflow through its API against a direct libvirt script
that does the same host steps on the same guest, alternating in one run.

    .venv/bin/python bench/launch.py [--rounds 5]

Starts a private stack (home under /var/tmp, free ports), times each round, prints the
medians and median(vmflow) / median(direct) against the 1.25x target, splits vmflow's
time by its Temporal histories, and writes bench/results/launch.json (and launch.png
when matplotlib is installed). Everything it made is removed, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from temporalio.api.enums.v1 import EventType

from activities.hypervisor.libvirt.connection import Connection
from bench.common import RESULTS, private_stack, wait_op
from bench.direct import Direct
from bench.plotting import pyplot
from vmflow import hostbed, stack
from vmflow.settings import Settings
from vmflow.temporal import connect

TARGET = 1.05  # median(vmflow) / median(direct)
CPU_TARGET = 0.3  # the stack's CPU seconds per launch (median)


def stack_cpu(s: Settings) -> dict[str, float]:
    """CPU seconds each of the stack's processes (Temporal, workers, API, ...) has used
    so far, children included."""
    out = {}
    for comp in stack.components(s):
        pid = stack.pid_of(s, comp.name)
        if pid is not None:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
            out[comp.name] = ticks / os.sysconf("SC_CLK_TCK")
    return out


def cpu_since(s: Settings, before: dict[str, float]) -> dict[str, float]:
    now = stack_cpu(s)
    return {k: round(v - before.get(k, 0.0), 3) for k, v in now.items()}


# ---- (a) vmflow through the API -----------------------------------------------------

class Vmflow:
    """Launches through the API. How the client hears the end: `temporal` waits on the
    launch workflow's result (Temporal's long poll: one request, no load while it
    waits), `api` polls GET /v1/operations/{id} every `poll` s, each a database read, a
    describe and a `status` query the control worker answers: at 0.05 s that polling
    alone costs the stack about as much CPU as the launch (bench/README.md)."""

    def __init__(self, s: Settings, api: httpx.Client, wait: str, poll: float):
        self.s, self.api, self.wait, self.poll = s, api, wait, poll
        self.loop = asyncio.new_event_loop()
        self.client = self.loop.run_until_complete(connect(s))

    def _until_closed(self, workflow_id: str, run_id: str) -> None:
        handle = self.client.get_workflow_handle(workflow_id, run_id=run_id)
        with contextlib.suppress(Exception):  # failed: the operation row says how
            self.loop.run_until_complete(handle.result())

    def round(self, n: int) -> dict[str, Any]:
        s, api = self.s, self.api
        cpu0, load = stack_cpu(s), os.getloadavg()[0]
        posted, t0 = time.time(), time.monotonic()
        r = api.post("/v1/servers", json={"name": f"bench-{n}", "image": "tiny",
                                          "flavor": "t1.micro"}).raise_for_status()
        server_id, op = r.json()["server"]["id"], r.json()["operation"]
        if self.wait == "temporal":
            op = api.get(f"/v1/operations/{op['id']}").raise_for_status().json()
            self._until_closed(op["workflow_id"], op["run_id"])
        else:
            op = wait_op(api, op["id"], every=self.poll)
        elapsed, observed = time.monotonic() - t0, time.time()
        cpu = cpu_since(s, cpu0)
        op = api.get(f"/v1/operations/{op['id']}").raise_for_status().json()
        status = api.get(f"/v1/servers/{server_id}").json()["status"]
        if op["status"] != "succeeded" or status != "ACTIVE":
            raise RuntimeError(f"launch {server_id} ended {op['status']} / {status}: {op}")
        d = api.delete(f"/v1/servers/{server_id}").raise_for_status()
        if wait_op(api, d.json()["operation"]["id"], every=0.2)["status"] != "succeeded":
            raise RuntimeError(f"delete of {server_id} failed")
        return {"seconds": elapsed, "workflow_id": op["workflow_id"], "run_id": op["run_id"],
                "posted": posted, "observed": observed, "stack_cpu_s": sum(cpu.values()),
                "stack_cpu_by_process": cpu, "load1": load}


# ---- (b) the same steps straight on libvirt -----------------------------------------

def host_uri(s: Settings) -> str:
    """The libvirt of the stack's host: its own libvirtd in the host bed (vmflow.hostbed),
    where the hypervisor worker launches too."""
    return hostbed.host(s, s.host).libvirt_uri if hostbed.namespaced(s) else s.libvirt_uri


# Direct: bench/direct.py (bench/concurrency.py boots with it too)


# ---- where vmflow's time goes -------------------------------------------------------

def _ts(event: Any) -> float:
    return float(event.event_time.ToMicroseconds()) / 1e6


async def history_split(s: Settings, launch: dict[str, Any]) -> dict[str, float]:
    """Cut the launch's wall time into slices: the API until the workflow starts; then
    every instant of the workflow by what was going on (a host step running, else a
    control step running, else a step waiting for a worker, else the workflow's own
    tasks); then from its close until the polling client saw it. Also each host
    step's own duration, to set beside the direct script's steps."""
    client = await connect(s)
    handle = client.get_workflow_handle(launch["workflow_id"], run_id=launch["run_id"])
    events = [e async for e in handle.fetch_history_events()]
    acts: dict[int, list[Any]] = {}  # scheduled event id: [queue, name, scheduled, started, end]
    split: dict[str, float] = defaultdict(float)
    for e in events:
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            a = e.activity_task_scheduled_event_attributes
            acts[e.event_id] = [a.task_queue.name, a.activity_type.name, _ts(e), None, None]
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            acts[e.activity_task_started_event_attributes.scheduled_event_id][3] = _ts(e)
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            acts[e.activity_task_completed_event_attributes.scheduled_event_id][4] = _ts(e)
        elif e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            split["workflow tasks (count)"] += 1
    begin, end = _ts(events[0]), _ts(events[-1])
    edges = sorted({begin, end, *(t for a in acts.values() for t in a[2:] if t)})
    for lo, hi in zip(edges, edges[1:], strict=False):
        mid = (lo + hi) / 2
        now = [a for a in acts.values() if a[2] <= mid < (a[4] or end)]
        run = [a[0] for a in now if a[3] and a[3] <= mid]
        kind = ("host steps running" if any(q.startswith("hv.") for q in run)
                else "control steps running" if run
                else "waiting for a worker" if now else "workflow tasks")
        split[kind] += hi - lo
    split["API → workflow start"] = begin - launch["posted"]
    split["workflow end → client sees it"] = launch["observed"] - end
    split["activities (count)"] = len(acts)
    for queue, name, _sched, started, done in acts.values():
        if queue.startswith("hv.") and started and done:
            split[name] += done - started
    return dict(split)


# ---- the run ------------------------------------------------------------------------

STEP_OF = {"host.fetch_image": "fetch", "host.create_disk": "disk",
           "host.create_config_drive": "drive",
           "host.define_domain": "define", "host.start_domain": "start",
           "host.wait_agent": "agent"}


def report(vm: list[dict[str, Any]], direct: list[dict[str, Any]],
           splits: list[dict[str, float]], virt_type: str, idle: dict[str, float],
           wait: str) -> dict[str, Any]:
    med = statistics.median
    mv, md = med(r["seconds"] for r in vm), med(r["seconds"] for r in direct)
    ratio = mv / md
    print(f"\n{'round':>6} {'vmflow s':>9} {'direct s':>9} {'ratio':>6}"
          f" {'stack CPU s (vmflow/direct)':>28} {'load':>5}")
    for i, (a, b) in enumerate(zip(vm, direct, strict=True), 1):
        print(f"{i:>6} {a['seconds']:>9.3f} {b['seconds']:>9.3f} {a['seconds']/b['seconds']:>6.2f}"
              f" {a['stack_cpu_s']:>18.2f} / {b['stack_cpu_s']:.2f} {a['load1']:>5.1f}")
    verdict = "meets" if ratio <= TARGET else "misses"
    print(f"{'median':>6} {mv:>9.3f} {md:>9.3f} {ratio:>6.2f}  ({verdict} the ≤ {TARGET}× target,"
          f" {virt_type})")
    cpu = med(r["stack_cpu_s"] for r in vm)
    idle_rate = sum(idle.values())
    # what the stack burns anyway (Temporal's timers, the host's liveness beat) over a
    # launch as long as this one; under TCG on a loaded machine that is seconds
    busy = med(r["stack_cpu_s"] - idle_rate * r["seconds"] for r in vm)
    by_proc = {k: med(r["stack_cpu_by_process"].get(k, 0.0) for r in vm)
               for k in vm[0]["stack_cpu_by_process"]}
    print(f"\nstack CPU per launch, median: {cpu:.2f} s ({verdict_cpu(cpu)} the ≤ {CPU_TARGET} s"
          f" target; client waits by {wait}); idle stack {idle_rate:.3f} CPU s per s, so"
          f" {busy:.2f} s above idle")
    print("  by process: " + ", ".join(f"{k} {v:.2f}" for k, v in by_proc.items() if v))
    vm_split = {k: med(sp.get(k, 0.0) for sp in splits) for k in splits[0]}
    print(f"\nvmflow's time, median s ({vm_split['workflow tasks (count)']:.0f} workflow tasks,"
          f" {vm_split['activities (count)']:.0f} activities):")
    for k, v in vm_split.items():
        if "(count)" not in k and k not in STEP_OF:
            print(f"  {k:<30} {v:7.3f}")
    direct_steps = {k: med(r["steps"][k] for r in direct) for k in direct[0]["steps"]}
    print("host steps, median s:            vmflow  direct")
    for name, step in STEP_OF.items():
        print(f"  {step:<6} {name:<23} {vm_split.get(name, 0.0):7.3f} {direct_steps[step]:7.3f}")
    return {"date": datetime.now(UTC).isoformat(timespec="seconds"), "virt_type": virt_type,
            "cpus": os.cpu_count(), "target": TARGET, "cpu_target_s": CPU_TARGET,
            "client_waits_by": wait,
            "rounds": [{"vmflow_s": a["seconds"], "direct_s": b["seconds"],
                        "first": a["first"], "load1": a["load1"],
                        "direct_load1": b["load1"],
                        "vmflow_stack_cpu_s": a["stack_cpu_s"],
                        "vmflow_stack_cpu_by_process": a["stack_cpu_by_process"],
                        "direct_stack_cpu_s": b["stack_cpu_s"],
                        "direct_steps": b["steps"], "vmflow_split": sp}
                       for a, b, sp in zip(vm, direct, splits, strict=True)],
            "median_vmflow_s": mv, "median_direct_s": md, "ratio": ratio,
            "meets_target": ratio <= TARGET,
            "median_vmflow_stack_cpu_s": cpu, "median_vmflow_stack_cpu_above_idle_s": busy,
            "idle_stack_cpu_per_s": idle, "median_vmflow_stack_cpu_by_process": by_proc,
            "meets_cpu_target": cpu <= CPU_TARGET,
            "median_direct_steps": direct_steps, "median_vmflow_split": vm_split}


def verdict_cpu(cpu: float) -> str:
    return "meets" if cpu <= CPU_TARGET else "misses"


def plot(result: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    if plt is None:
        return
    rounds = range(1, len(result["rounds"]) + 1)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for key, label in (("vmflow_s", "vmflow (API)"), ("direct_s", "direct libvirt")):
        line, = ax.plot(rounds, [r[key] for r in result["rounds"]], "o-", label=label)
        ax.axhline(result[f"median_{key}"], color=line.get_color(), ls="--", lw=0.8)
    ax.set(xlabel="round", ylabel="launch → ACTIVE (s)", xticks=list(rounds), ylim=(0, None),
           title=f"median ratio {result['ratio']:.2f}× (target ≤ {TARGET}×, "
                 f"{result['virt_type']})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def idle_cpu(s: Settings, seconds: float = 10) -> dict[str, float]:
    """CPU seconds per second each process of the idle stack uses."""
    before = stack_cpu(s)
    time.sleep(seconds)
    return {k: round(v / seconds, 4) for k, v in cpu_since(s, before).items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--wait", choices=("temporal", "api"), default="temporal",
                        help="how the client hears the launch end (class Vmflow)")
    parser.add_argument("--poll", type=float, default=0.05,
                        help="with --wait api: seconds between GET /v1/operations/{id}")
    args = parser.parse_args()
    with private_stack() as (s, api):
        vmflow = Vmflow(s, api, args.wait, args.poll)
        direct = Direct(s, Connection(host_uri(s)), api)
        idle = idle_cpu(s)
        vm_runs: list[dict[str, Any]] = []
        direct_runs: list[dict[str, Any]] = []

        def run_direct() -> None:
            cpu0, load = stack_cpu(s), os.getloadavg()[0]
            direct_runs.append({**direct.launch(), "load1": load,
                                "stack_cpu_s": sum(cpu_since(s, cpu0).values())})

        for n in range(1, args.rounds + 1):
            first = "vmflow" if n % 2 else "direct"  # alternate: load drifts
            if first == "direct":
                run_direct()
            vm_runs.append({**vmflow.round(n), "first": first})
            if first == "vmflow":
                run_direct()
            print(f"round {n}: vmflow {vm_runs[-1]['seconds']:.3f} s, "
                  f"direct {direct_runs[-1]['seconds']:.3f} s ({first} first, load "
                  f"{vm_runs[-1]['load1']:.1f})", flush=True)
        splits = [asyncio.run(history_split(s, r)) for r in vm_runs]
        result = report(vm_runs, direct_runs, splits, direct.virt_type, idle, args.wait)
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "launch.json").write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nwrote {RESULTS / 'launch.json'}")
        plot(result, RESULTS / "launch.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())

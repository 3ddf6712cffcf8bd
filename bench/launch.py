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
import hashlib
import json
import os
import shutil
import statistics
import sys
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import libvirt
from temporalio.api.enums.v1 import EventType

from activities.hypervisor import qemu_img
from activities.hypervisor.libvirt import domain_xml
from activities.hypervisor.libvirt.connection import Connection
from activities.hypervisor.libvirt.domain import Domain
from bench.common import PREFIX, RESULTS, private_stack, wait_op
from vmflow import stack
from vmflow.bootstrap import TINY_FILES
from vmflow.names import domain_name
from vmflow.settings import Settings
from vmflow.temporal import connect

TARGET = 1.25


def stack_cpu(s: Settings) -> float:
    """CPU seconds the stack's processes (Temporal, workers, API) have used so far."""
    ticks = 0
    for comp in stack.components(s):
        pid = stack.pid_of(s, comp.name)
        if pid is not None:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


# ---- (a) vmflow through the API -----------------------------------------------------

def vmflow_round(s: Settings, api: httpx.Client, n: int, poll: float) -> dict[str, Any]:
    cpu0 = stack_cpu(s)
    posted, t0 = time.time(), time.monotonic()
    r = api.post("/v1/servers", json={"name": f"bench-{n}", "image": "tiny",
                                      "flavor": "t1.micro"}).raise_for_status()
    server_id = r.json()["server"]["id"]
    op = wait_op(api, r.json()["operation"]["id"], every=poll)
    elapsed, observed = time.monotonic() - t0, time.time()
    cpu = stack_cpu(s) - cpu0
    status = api.get(f"/v1/servers/{server_id}").json()["status"]
    if op["status"] != "succeeded" or status != "ACTIVE":
        raise RuntimeError(f"launch {server_id} ended {op['status']} / {status}: {op}")
    d = api.delete(f"/v1/servers/{server_id}").raise_for_status()
    if wait_op(api, d.json()["operation"]["id"], every=0.2)["status"] != "succeeded":
        raise RuntimeError(f"delete of {server_id} failed")
    return {"seconds": elapsed, "workflow_id": op["workflow_id"], "run_id": op["run_id"],
            "posted": posted, "observed": observed, "stack_cpu_s": cpu}


# ---- (b) the same steps straight on libvirt -----------------------------------------

class Direct:
    """What the hypervisor worker does for a launch, minus Temporal and the database:
    the same cache (sha256-verified copy, then a stamp), overlay, XML, start, agent."""

    def __init__(self, s: Settings, conn: Connection, api: httpx.Client):
        self.s, self.conn = s, conn
        self.cache, self.instances = s.home / "direct/cache", s.home / "direct/instances"
        self.virt_type = conn.virt_type(s.virt_type)
        images = {i["name"]: i for i in api.get("/v1/images").json()["images"]}
        flavor = next(f for f in api.get("/v1/flavors").json()["flavors"]
                      if f["name"] == "t1.micro")
        self.vcpus, self.ram_mb, self.disk_gb = flavor["vcpus"], flavor["ram"], flavor["disk"]
        self.files = {n: (images[n]["id"], s.guest_cache / f, images[n]["checksum"])
                      for n, f, _fmt in TINY_FILES}
        self.cmdline = images["tiny"]["properties"]["os_command_line"]

    def fetch(self, image_id: str, src: Path, checksum: str) -> Path:
        self.cache.mkdir(parents=True, exist_ok=True)
        dst = self.cache / image_id
        stamp = dst.with_suffix(".verified")
        if dst.exists() and stamp.exists():
            st = dst.stat()
            if stamp.read_text() == f"{checksum} {st.st_size} {st.st_mtime_ns}":
                return dst
        tmp, h = dst.with_name(f"{dst.name}.part"), hashlib.sha256()
        with src.open("rb") as f, tmp.open("wb") as out:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
                out.write(chunk)
        if h.hexdigest() != checksum:
            raise RuntimeError(f"{src}: sha256 does not match image {image_id}")
        tmp.chmod(0o644)
        tmp.rename(dst)
        st = dst.stat()
        stamp.write_text(f"{checksum} {st.st_size} {st.st_mtime_ns}")
        return dst

    def launch(self) -> dict[str, Any]:
        steps: dict[str, float] = {}
        t0 = last = time.monotonic()

        def mark(step: str) -> None:
            nonlocal last
            steps[step], last = time.monotonic() - last, time.monotonic()

        paths = {n: str(self.fetch(*f)) for n, f in self.files.items()}
        mark("fetch")
        iid = str(uuid.uuid4())
        d = self.instances / iid
        root = paths["tiny"]
        if qemu_img.info(self.s, root, "qcow2").get("virtual-size", 0) > self.disk_gb * 2**30:
            raise RuntimeError("the image is larger than the flavor's disk")
        d.mkdir(parents=True)
        d.chmod(0o755)
        qemu_img.create_overlay(self.s, str(d / "disk.part"), root, "qcow2", self.disk_gb)
        (d / "disk.part").rename(d / "disk")
        mark("disk")
        cfg = domain_xml.DomainConfig(
            uuid=iid, name=domain_name(PREFIX, iid), vcpus=self.vcpus, ram_mb=self.ram_mb,
            virt_type=self.virt_type,
            disks=[domain_xml.Disk(path=str(d / "disk"), target="vda", serial="root")],
            console_log=str(d / "console.log"), kernel=paths["tiny-kernel"],
            initrd=paths["tiny-ramdisk"], cmdline=self.cmdline,
            extra_cmdline=["vmflow.root=/dev/vda"], agent=True)
        dom = Domain(self.conn.get().defineXML(domain_xml.build(cfg)))
        mark("define")
        dom.start()
        mark("start")
        deadline = time.monotonic() + self.s.agent_timeout
        while True:
            try:
                dom.agent_command("guest-ping", timeout_s=1)
                break
            except libvirt.libvirtError:
                if time.monotonic() > deadline or not dom.is_active():
                    raise
                time.sleep(0.2)
        mark("agent")
        seconds = time.monotonic() - t0
        dom.destroy()
        dom.undefine()
        shutil.rmtree(d)
        return {"seconds": seconds, "steps": steps}


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
           "host.define_domain": "define", "host.start_domain": "start",
           "host.wait_agent": "agent"}


def report(vm: list[dict[str, Any]], direct: list[dict[str, Any]],
           splits: list[dict[str, float]], virt_type: str) -> dict[str, Any]:
    med = statistics.median
    mv, md = med(r["seconds"] for r in vm), med(r["seconds"] for r in direct)
    ratio = mv / md
    print(f"\n{'round':>6} {'vmflow s':>9} {'direct s':>9} {'ratio':>6}"
          f" {'stack CPU s (vmflow/direct)':>28}")
    for i, (a, b) in enumerate(zip(vm, direct, strict=True), 1):
        print(f"{i:>6} {a['seconds']:>9.3f} {b['seconds']:>9.3f} {a['seconds']/b['seconds']:>6.2f}"
              f" {a['stack_cpu_s']:>18.2f} / {b['stack_cpu_s']:.2f}")
    verdict = "meets" if ratio <= TARGET else "misses"
    print(f"{'median':>6} {mv:>9.3f} {md:>9.3f} {ratio:>6.2f}  ({verdict} the ≤ {TARGET}× target,"
          f" {virt_type})")
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
            "cpus": os.cpu_count(), "target": TARGET,
            "rounds": [{"vmflow_s": a["seconds"], "direct_s": b["seconds"],
                        "vmflow_stack_cpu_s": a["stack_cpu_s"],
                        "direct_stack_cpu_s": b["stack_cpu_s"],
                        "direct_steps": b["steps"], "vmflow_split": sp}
                       for a, b, sp in zip(vm, direct, splits, strict=True)],
            "median_vmflow_s": mv, "median_direct_s": md, "ratio": ratio,
            "meets_target": ratio <= TARGET, "median_direct_steps": direct_steps,
            "median_vmflow_split": vm_split}


def plot(result: dict[str, Any], path: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot")
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--poll", type=float, default=0.05,
                        help="seconds between GET /v1/operations/{id} while launching")
    args = parser.parse_args()
    with private_stack() as (s, api):
        direct = Direct(s, Connection(s.libvirt_uri), api)
        vm_runs, direct_runs = [], []
        for n in range(1, args.rounds + 1):
            vm_runs.append(vmflow_round(s, api, n, args.poll))
            cpu0 = stack_cpu(s)
            direct_runs.append({**direct.launch(), "stack_cpu_s": stack_cpu(s) - cpu0})
            print(f"round {n}: vmflow {vm_runs[-1]['seconds']:.3f} s, "
                  f"direct {direct_runs[-1]['seconds']:.3f} s", flush=True)
        splits = [asyncio.run(history_split(s, r)) for r in vm_runs]
        result = report(vm_runs, direct_runs, splits, direct.virt_type)
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "launch.json").write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nwrote {RESULTS / 'launch.json'}")
        plot(result, RESULTS / "launch.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())

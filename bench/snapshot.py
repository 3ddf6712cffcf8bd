"""Snapshot freeze window, guest stalls and duration: createImage of a running guest
holding about 1 GiB and 8 GiB of data, against Nova's own pipeline for the same result
(`qemu-img convert -t none`, then the output read again, hashed and stored, as Glance
does) and against the bare `qemu-img convert -t none` (the physical floor), alternating
in one run.

    .venv/bin/python bench/snapshot.py [--sizes 1,8] [--rounds 2] [--quick]

Starts a private stack (home under /var/tmp, free ports), uploads a bench-only image
(the tiny guest's root file system grown to 12 GiB), launches one guest from it and
fills its disk size by size. Each round: tickers in the guest append /proc/uptime to a
file on the frozen root and on a tmpfs every ~10 ms while createImage runs; the freeze
window is the /root gap around vmflow's freeze, the stall the longest tmpfs gap (the
whole guest stopped); then the Nova pipeline and the bare convert of the instance's
disk, timed. Prints a table against the targets (freeze and stall ≤ 0.2 s in every
round, snapshot ≤ 1.0x the Nova pipeline and ≤ 1.2x the bare convert) and writes
bench/results/snapshot.json and snapshot.png. Everything it made is removed, also on
Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import libvirt
import libvirt_qemu
from temporalio.api.enums.v1 import EventType

from activities.hypervisor.libvirt.connection import Connection
from bench.common import GUEST, RESULTS, private_stack, wait_op
from bench.snapshot_analysis import TICKS, freeze_window, plot, report
from bench.snapshot_baseline import backing_chain, bare_round, evict, host_dirty_mib, nova_round
from vmflow import hostbed, stack
from vmflow.contracts.activity_names import HostActs
from vmflow.settings import Settings
from vmflow.temporal import connect

POLL_S = 1.0
DISK_GB = 12
CHUNK_MIB = 64
FLAVOR = {"name": "bench.snap", "vcpus": 1, "ram": 512, "disk": DISK_GB}
TICKER = "while :; do cat /proc/uptime >> {}; usleep 10000; done"
SETTLE_S = 1.0  # ticks before the POST and after the operation ended, for the baseline
OP_TIMEOUT_S = 3600


def run(*cmd: str, ok: tuple[int, ...] = (0,)) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode not in ok:
        raise RuntimeError(f"{' '.join(cmd)} exited {r.returncode}: {r.stderr or r.stdout}")


def wall(iso: str) -> float:
    t = datetime.fromisoformat(iso)
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()


# ---- the bench image: the tiny guest with a 12 GiB root file system -----------------

def build_image(work: Path) -> Path:
    """Offline: flatten to raw, grow the file, check and resize ext4, back to qcow2."""
    raw, out = work / "bench-root.raw", work / "bench-root.qcow2"
    run("qemu-img", "convert", "-f", "qcow2", "-O", "raw", str(GUEST / "root.qcow2"), str(raw))
    os.truncate(raw, DISK_GB * 2**30)
    run("e2fsck", "-fy", str(raw), ok=(0, 1))  # 1: errors corrected
    run("resize2fs", str(raw))
    run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(out))
    raw.unlink()
    return out


def upload_image(api: httpx.Client, path: Path) -> str:
    """POST the record with the tiny image's boot properties, PUT the file streamed."""
    tiny = next(i for i in api.get("/v1/images").raise_for_status().json()["images"]
                if i["name"] == "tiny")
    props = {k: tiny["properties"][k] for k in
             ("kernel_id", "ramdisk_id", "os_command_line", "hw_qemu_guest_agent")}
    r = api.post("/v1/images", json={"name": "bench-snapshot-root", "disk_format": "qcow2",
                                     "container_format": "bare", "properties": props})
    image_id = str(r.raise_for_status().json()["id"])

    def chunks() -> Iterator[bytes]:
        with path.open("rb") as f:
            yield from iter(lambda: f.read(1 << 20), b"")

    api.put(f"/v1/images/{image_id}/file", content=chunks(), timeout=600,
            headers={"Content-Type": "application/octet-stream"}).raise_for_status()
    status = api.get(f"/v1/images/{image_id}").raise_for_status().json()["status"]
    if status != "active":
        raise RuntimeError(f"the bench image {image_id} is {status} after its upload")
    return image_id


# ---- the guest, through its agent ---------------------------------------------------

class Guest:
    def __init__(self, dom: libvirt.virDomain):
        self.dom = dom

    def agent(self, command: str, args: dict[str, Any]) -> Any:
        req = json.dumps({"execute": command, "arguments": args})
        return json.loads(libvirt_qemu.qemuAgentCommand(self.dom, req, 10, 0))["return"]

    def sh(self, script: str, timeout: float = 60) -> str:
        """Run a shell script in the guest; its stdout, or an error if it failed."""
        pid = self.agent("guest-exec", {"path": "/bin/sh", "arg": ["-c", script],
                                        "capture-output": True})["pid"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.agent("guest-exec-status", {"pid": pid})
            if st.get("exited"):
                out = base64.b64decode(st.get("out-data", "")).decode(errors="replace")
                if st.get("exitcode") != 0:
                    err = base64.b64decode(st.get("err-data", "")).decode(errors="replace")
                    raise RuntimeError(f"guest: {script!r} exited {st.get('exitcode')}: {err}")
                return out
            time.sleep(0.02)
        raise TimeoutError(f"guest: {script!r} did not finish in {timeout:.0f} s")

    def clock(self) -> float:
        """Host wall time minus guest uptime, from the quickest of a few round trips."""
        best = (float("inf"), 0.0)
        for _ in range(5):
            t0 = time.time()
            up = float(self.sh("cat /proc/uptime").split()[0])
            t1 = time.time()
            best = min(best, (t1 - t0, (t0 + t1) / 2 - up))
        return best[1]

    def used_gib(self) -> float:
        return int(self.sh("df -k / | tail -1").split()[2]) / 2**20

    def fill(self, gib: float) -> None:
        """Copies of one random 64 MiB chunk until the disk holds about `gib` GiB of
        them, then sync. The random data keeps qcow2 from finding anything to skip."""
        want = max(1, round(gib * 1024 / CHUNK_MIB))
        self.sh(f"mkdir -p /root/fill; [ -f /root/chunk ] || "
                f"dd if=/dev/urandom of=/root/chunk bs=1M count={CHUNK_MIB} 2>/dev/null",
                timeout=600)
        have = int(self.sh("ls /root/fill | wc -l")) + 1  # the chunk counts
        t0, shown = time.monotonic(), time.monotonic()
        for i in range(have, want):
            self.sh(f"cp /root/chunk /root/fill/{i:04d}", timeout=600)
            if time.monotonic() - shown > 10 or i == want - 1:
                shown = time.monotonic()
                done = (i + 1 - have) * CHUNK_MIB
                print(f"  filling: {(i + 1) * CHUNK_MIB / 1024:.2f} / {gib:g} GiB"
                      f" ({done / (shown - t0):.0f} MiB/s)", flush=True)
        self.sh("sync", timeout=600)

    def settle(self, timeout: float = 900) -> None:
        """Stop the guest kernel's ext4lazyinit thread and wait until it is gone: the
        bench image's file system was grown offline, and the guest zeroes the new inode
        tables in the background (for many minutes on a loaded machine), a load of its
        own on the disk and the freeze that would be measured as vmflow's. Remounting
        with noinit_itable unregisters it (ext4 zeroes a table when it first uses it)."""
        self.sh("mount -o remount,noinit_itable /")
        t0 = time.monotonic()
        while int(self.sh("grep -l ext4lazyinit /proc/[0-9]*/comm 2>/dev/null | wc -l")):
            if time.monotonic() - t0 > timeout:
                raise TimeoutError(f"ext4lazyinit still runs after {timeout:.0f} s")
            print(f"  waiting for the guest's ext4lazyinit ({time.monotonic() - t0:.0f} s)",
                  flush=True)
            time.sleep(2)

    def start_tickers(self) -> None:
        for name, f in TICKS.items():
            self.sh(f"rm -f {f}; sh -c '{TICKER.format(f)}' </dev/null >/dev/null 2>&1 & "
                    f"echo $! > /run/ticker-{name}.pid")

    def stop_tickers(self) -> dict[str, list[float]]:
        """Stop them and read their ticks back (guest uptime, seconds)."""
        ticks: dict[str, list[float]] = {}
        for name, f in TICKS.items():
            out = self.sh(f"kill $(cat /run/ticker-{name}.pid); cat {f}; rm -f {f}")
            ticks[name] = [float(line.split()[0]) for line in out.splitlines()
                           if len(line.split()) == 2]  # the kill may have cut the last line
        return ticks


# ---- the host side ------------------------------------------------------------------

def _ts(event: Any) -> float:
    return float(event.event_time.ToMicroseconds()) / 1e6


async def host_steps(s: Settings, op: dict[str, Any]) -> dict[str, Any]:
    """From the snapshot's Temporal history: when the host's copy step and upload step
    ran (the last attempt of each), and what the copy step reported (frozen_s)."""
    client = await connect(s)
    handle = client.get_workflow_handle(op["workflow_id"], run_id=op["run_id"])
    names: dict[int, str] = {}
    steps: dict[str, Any] = {}
    async for e in handle.fetch_history_events():
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            names[e.event_id] = e.activity_task_scheduled_event_attributes.activity_type.name
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            name = names[e.activity_task_started_event_attributes.scheduled_event_id]
            steps[name] = {"start": _ts(e)}
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            a = e.activity_task_completed_event_attributes
            step = steps[names[a.scheduled_event_id]]
            step["end"] = _ts(e)
            if a.result.payloads:
                step["result"] = json.loads(a.result.payloads[0].data or b"null")
    return steps


# ---- one snapshot round -------------------------------------------------------------

def freeze_parts(s: Settings, server_id: str) -> dict[str, float]:
    """The hypervisor worker's own split of its latest freeze of this server (its log)."""
    line = next((ln for ln in reversed(stack.log_file(s, "hypervisor").read_text(
        errors="replace").splitlines()) if f"freeze window of {server_id}" in ln), "")
    return {k: float(v) for k, v in re.findall(r"(fsFreeze|backupBegin|fsThaw) ([\d.]+)", line)}


def snapshot_round(s: Settings, api: httpx.Client, guest: Guest, server_id: str,
                   chain: list[str], name: str) -> dict[str, Any]:
    evict(chain)
    dirty = host_dirty_mib()
    guest.start_tickers()
    off0 = guest.clock()
    before = (time.time() - off0, off0)
    time.sleep(SETTLE_S)
    r = api.post(f"/v1/servers/{server_id}/action", json={"createImage": {"name": name}})
    body = r.raise_for_status().json()
    image_id = body["image"]["id"]
    # timed by the operation's own start and end; a slow poll keeps the API, Temporal
    # and the control worker (each poll is a describe and a query) off the 2 CPUs
    op = wait_op(api, body["operation"]["id"], every=POLL_S, timeout=OP_TIMEOUT_S, say=name)
    time.sleep(SETTLE_S)
    ticks = guest.stop_tickers()
    off1 = guest.clock()
    after = (time.time() - off1, off1)
    if op["status"] != "succeeded":
        raise RuntimeError(f"createImage {image_id} ended {op['status']}: {op['last_error']}")
    image = api.get(f"/v1/images/{image_id}").raise_for_status().json()
    props = image.get("properties") or {}
    if image["status"] != "active":
        raise RuntimeError(f"snapshot image {image_id} is {image['status']}")
    started, finished = wall(op["started_at"]), wall(op["finished_at"])
    steps = asyncio.run(host_steps(s, op))
    copy, upload = steps.get(HostActs.SNAPSHOT_DISK, {}), steps.get(HostActs.UPLOAD_SNAPSHOT, {})
    taken = copy.get("result") or {}
    frozen_mid = (taken["frozen_at"] + taken["frozen_s"] / 2
                  if taken.get("frozen_at") and taken.get("frozen_s") else None)
    window = freeze_window(ticks, (before, after), (started, finished), frozen_mid)
    api.delete(f"/v1/images/{image_id}")  # its bytes are many GiB; the home goes anyway
    return {"seconds": finished - started, "image_id": image_id,
            "consistency": props.get("consistency"), "image_size": image.get("size"),
            "copy_s": copy["end"] - copy["start"] if "end" in copy else None,
            "upload_s": upload["end"] - upload["start"] if "end" in upload else None,
            "vmflow_frozen_s": taken.get("frozen_s"),
            "vmflow_freeze_parts": freeze_parts(s, server_id),
            "freeze_from_copy_start_s": window["freeze_at"] - copy["start"] if copy else None,
            "longest_gap_from_copy_start_s":
                window["longest_gap_at"] - copy["start"] if copy else None,
            "stall_from_copy_start_s": window["stall_at"] - copy["start"] if copy else None,
            "host_dirty_mib": dirty,
            "started": started, "finished": finished, "copy_start": copy.get("start"),
            "frozen_mid": frozen_mid,
            **window}


# ---- the run ------------------------------------------------------------------------

def launch_guest(s: Settings, api: httpx.Client) -> str:
    """The bench image, its flavor and one guest launched from it; its id."""
    print(f"bench image: {DISK_GB} GiB ext4 from the tiny guest", flush=True)
    image_id = upload_image(api, build_image(s.home))
    (s.home / "bench-root.qcow2").unlink()
    api.post("/v1/flavors", json=FLAVOR).raise_for_status()
    r = api.post("/v1/servers", json={"name": "bench-snapshot", "image": image_id,
                                      "flavor": FLAVOR["name"]}).raise_for_status()
    server_id: str = r.json()["server"]["id"]
    op = wait_op(api, r.json()["operation"]["id"], every=0.5, timeout=900, say="launch")
    if op["status"] != "succeeded":
        raise RuntimeError(f"launch of {server_id} ended {op['status']}: {op}")
    return server_id


def size_rounds(s: Settings, api: httpx.Client, guest: Guest, server_id: str, size: float,
                n_rounds: int) -> dict[str, Any]:
    """Fill the guest to `size` GiB, then the rounds, alternating which goes first."""
    disk = s.host_dir() / "instances" / server_id / "disk"
    chain = backing_chain(disk)
    guest.fill(size)
    guest.settle()
    data = guest.used_gib()
    print(f"{size:g} GiB: the guest's disk holds {data:.2f} GiB", flush=True)
    rounds = []
    for n in range(1, n_rounds + 1):
        name = f"bench-{size:g}G-{n}"
        if n % 2:
            snap = snapshot_round(s, api, guest, server_id, chain, name)
            nova_s = nova_round(disk, chain, s.home)
            bare_s = bare_round(disk, chain, s.home)
        else:
            bare_s = bare_round(disk, chain, s.home)
            nova_s = nova_round(disk, chain, s.home)
            snap = snapshot_round(s, api, guest, server_id, chain, name)
        rounds.append({"snapshot": snap, "nova_pipeline_s": nova_s, "bare_convert_s": bare_s,
                       "freeze_s": snap["freeze_s"], "stall_s": snap["stall_s"],
                       "loadavg_1m": os.getloadavg()[0]})
        parts = ", ".join(f"{k} {v:.3f}" for k, v in snap["vmflow_freeze_parts"].items())
        print(f"{name}: freeze {snap['freeze_s']:.3f} s (vmflow: {parts}), longest stall"
              f" {snap['stall_s']:.3f} s, snapshot {snap['seconds']:.2f} s (copy"
              f" {snap['copy_s'] or 0:.2f}, upload {snap['upload_s'] or 0:.2f}), Nova"
              f" pipeline {nova_s:.2f} s, bare convert {bare_s:.2f} s", flush=True)
    return {"size_gib": size, "data_gib": data, "rounds": rounds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,8",
                        help="GiB of data in the guest, comma-separated, filled in order")
    parser.add_argument("--rounds", type=int, default=2,
                        help="snapshot + Nova pipeline + bare convert rounds per size,"
                             " alternating which goes first")
    parser.add_argument("--quick", action="store_true", help="a smoke run: --sizes 0.25")
    args = parser.parse_args()
    sizes = sorted({float(x) for x in ("0.25" if args.quick else args.sizes).split(",")})
    if sizes[-1] > DISK_GB - 2:
        parser.error(f"the guest's disk is {DISK_GB} GiB; sizes must stay below {DISK_GB - 2}")
    need = 3.5 * sizes[-1] * 2**30 + 2 * 2**30  # instance disk, copies, store
    if shutil.disk_usage("/var/tmp").free < need:
        print(f"/var/tmp needs about {need / 2**30:.0f} GiB free", file=sys.stderr)
        return 1
    with private_stack() as (s, api):
        server_id = launch_guest(s, api)
        uri = hostbed.bed(s)[0].libvirt_uri  # the host's own libvirtd
        virt_type = Connection(uri).virt_type(s.virt_type)
        guest = Guest(libvirt.open(uri).lookupByUUIDString(server_id))
        results: list[dict[str, Any]] = []
        for size in sizes:  # the results so far after each size: an 8 GiB fill is long
            results.append(size_rounds(s, api, guest, server_id, size, args.rounds))
            result = report(results, virt_type)
            RESULTS.mkdir(exist_ok=True)
            (RESULTS / "snapshot.json").write_text(json.dumps(result, indent=2) + "\n")
            print(f"\nwrote {RESULTS / 'snapshot.json'}")
            plot(result, RESULTS / "snapshot.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())

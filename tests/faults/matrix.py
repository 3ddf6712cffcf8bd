"""One cell of the matrix: arm a fault point, start the operation, see the worker die,
restart what died (`make up`), wait for the end, and list what does not hold."""

from __future__ import annotations

import json
import os
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import libvirt

from tests.faults.boundaries import COMPONENT, Boundary, worker_kind
from tests.faults.cases import Case, Pool, Started, backend_remains, share_gone
from tests.faults.test_snapshot_crash import guards_of
from tests.integration.conftest import (
    CLEAN,
    delete_server,
    ledger_audit,
    remains,
    wait_operation,
)
from tests.integration.guest import EXPECTED_POWER, domain, power
from tests.integration.test_shares import GONE, wait_rules
from tests.integration.test_snapshot import freeze_status
from vmflow import stack
from vmflow.settings import Settings
from workers import fault_point
from workers.fault_point import FIRED_FILE, SPEC_FILE

# slice: per workflow type and worker kind, the boundary whose activity ranks first here
RISKY = ("resize_pull_files", "live_migrate", "attach_port", "ensure_floating_ip",
         "ensure_port", "detach_port", "resize_drop_source", "start_auto_confirm",
         "snapshot_disk", "upload_snapshot", "swap_in_rebuild", "fetch_image",
         "create_disk", "define_domain", "apply_access", "managed_save", "rescue",
         "resize_share", "create_share", "delete_share", "snapshot", "destroy_domain",
         "start_domain", "power", "shutdown", "pause", "unpause", "claim", "done",
         "begin_delete", "update_instance", "finish_operation")
PARTIAL = (".part", ".tmp", "snap-", "disk.new", "disk.old")
libvirt.registerErrorHandler(lambda *_: None, None)  # a shut-off domain's jobInfo: no noise


def rank(b: Boundary) -> tuple[int, int]:
    hit = next((i for i, word in enumerate(RISKY) if word in b.activity), len(RISKY))
    return hit, 0 if b.when == "after" else 1  # after: done, and nobody was told


# the slice kills the control worker in these types only (each one boundary), so that
# every worker kind is covered and the slice stays short
CONTROL_IN_SLICE = {"LaunchInstance", "SnapshotInstance", "CreateShare"}


def select(boundaries: list[Boundary], mode: str, shard: tuple[int, int]) -> list[Boundary]:
    """slice: the riskiest boundary on the host or storage worker (control's when the
    type runs nothing else, and in CONTROL_IN_SLICE too); full: all. Either, the part
    of it in this shard."""
    if mode == "slice":
        best: dict[str, Boundary] = {}
        for b in boundaries:
            if b.kind not in best or rank(b) < rank(best[b.kind]):
                best[b.kind] = b
        wf_type = boundaries[0].workflow_type if boundaries else ""
        if len(best) > 1 and wf_type not in CONTROL_IN_SLICE:
            best.pop("control", None)
        boundaries = [b for b in boundaries if b in best.values()]
    i, n = shard
    return [b for b in boundaries if zlib.crc32(b.name.encode()) % n == i]


def shard_of(env: str | None) -> tuple[int, int]:
    if not env:
        return 0, 1
    i, n = (int(x) for x in env.split("/"))
    assert 0 <= i < n, env
    return i, n


def arm(s: Settings, b: Boundary) -> None:
    tmp = s.home / (SPEC_FILE + ".tmp")
    tmp.write_text(json.dumps(b.spec()))
    tmp.rename(s.home / SPEC_FILE)  # a worker never reads half a spec


def disarm(s: Settings) -> None:
    """Returns once no worker can fire any more: one that matched has died by then, so
    the `make up` after it restarts that worker (the op can end before an "after"
    boundary's kill: seen in CI as a control worker that died unseen)."""
    fault_point.disarm(s.home)


def fired_since(s: Settings, b: Boundary, t0: float) -> dict[str, Any] | None:
    """What fault-point fired for `b` since t0 (its queue says which worker died)."""
    try:
        lines = (s.home / FIRED_FILE).read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        f: dict[str, Any] = json.loads(line)
        if (f["at"] >= t0 and f["activity"] == b.activity and f["when"] == b.when
                and f["workflow_type"] == b.workflow_type):
            return f
    return None


def component_of(s: Settings, queue: str) -> str:
    """The stack component that polls `queue`: control, storage, or the hypervisor
    worker of the host hv.<host> names (the one that ran it, on a many-host bed)."""
    kind = worker_kind(queue)
    if kind != "hypervisor":
        return COMPONENT[kind]
    host = queue.removeprefix("hv.")
    return stack.hypervisor_component(s, host)


def op_done(api: httpx.Client, started: Started) -> bool:
    if started.op_id is None:
        return False
    return bool(api.get(f"/v1/operations/{started.op_id}").json()["status"] != "running")


def partial_files(s: Settings) -> list[str]:
    roots = [s.host_dir(), s.image_store]
    return [str(p) for root in roots if root.exists() for p in root.rglob("*")
            if any(mark in p.name for mark in PARTIAL)]


def libvirt_job(server_id: str) -> int:
    try:
        return int(domain(server_id).jobInfo()[0])
    except (LookupError, libvirt.libvirtError):
        return libvirt.VIR_DOMAIN_JOB_NONE


def server_violations(s: Settings, api: httpx.Client, case: Case, sid: str,
                      status: str) -> list[str]:
    bad: list[str] = []
    r = api.get(f"/v1/servers/{sid}")
    if r.status_code == 404:
        if not (case.deletes and status == "succeeded"):
            bad.append("server gone")
        if remains(s, sid) != CLEAN:
            bad.append(f"remains {remains(s, sid)}")
    else:
        srv = r.json()
        if srv["task_state"] is not None:
            bad.append(f"task_state {srv['task_state']}")
        want = EXPECTED_POWER.get(srv["status"])
        if srv["status"].startswith("SHELVED_OFFLOADED"):
            if remains(s, sid)["domain"]:
                bad.append("offloaded but still defined")
        elif want is None:
            bad.append(f"status {srv['status']}")
        elif power(sid) != want:
            bad.append(f"{srv['status']} but {power(sid)}")
        snap = case.workflow_type == "SnapshotInstance" and want == "running"
        if snap and freeze_status(sid) != "thawed":
            bad.append("guest frozen")
    if guards_of(sid):
        bad.append("thaw guard alive")
    if libvirt_job(sid) != libvirt.VIR_DOMAIN_JOB_NONE:
        bad.append("libvirt job left")
    return bad


def share_violations(s: Settings, api: httpx.Client, case: Case, share_id: str,
                     status: str) -> list[str]:
    r = api.get(f"/v1/shares/{share_id}")
    if case.deletes and status == "succeeded":
        gone = share_gone(api, share_id)
        left = backend_remains(s, share_id)
        return ([] if gone else ["share not gone"]) + ([] if left == GONE else [f"{left}"])
    if r.status_code != 200:
        return [f"share {r.status_code}"]
    share = r.json()
    ok = {"available"} | ({"error"} if status == "compensated" else set())
    bad = [] if share["status"] in ok else [f"share {share['status']}"]
    if case.workflow_type == "SyncShareAccess":
        states = {rule["state"] for rule in wait_rules(api, share_id, timeout=180)}
        bad += [] if states <= {"active"} else [f"rules {sorted(states)}"]
    return bad


# a case's own end-state checks (the many-host bed's): replace the single-host ones
Checks = Callable[[Settings, httpx.Client, Pool, Case, Started, str], list[str]]


def run(s: Settings, api: httpx.Client, pool: Pool, case: Case, b: Boundary,
        fire_timeout: float = 240, checks: Checks | None = None) -> dict[str, Any]:
    """Kill the worker at `b` during a fresh run of `case`; what happened and what broke."""
    t0 = time.time()
    try:  # a start that fails once armed must not leave the next cell a spec to fire
        started = case.start(pool, lambda: arm(s, b))
    except BaseException:
        disarm(s)
        raise
    fired = False
    deadline = time.monotonic() + fire_timeout
    try:
        while time.monotonic() < deadline:
            f = fired_since(s, b, t0)
            fired = f is not None and stack.pid_of(s, component_of(s, f["queue"])) is None
            if fired or op_done(api, started):
                break
            time.sleep(0.1)
    finally:
        disarm(s)
        stack.up(s)  # `make up`: restarts only what died
    fired = fired or fired_since(s, b, t0) is not None
    if started.wait is not None:
        status = started.wait()
    elif started.op_id is not None:
        status = wait_operation(api, started.op_id, timeout=900)["status"]
    else:
        wait_rules(api, started.resource, timeout=300)
        status = "succeeded"
    bad = [] if status in ("succeeded", "compensated") else [f"operation {status}"]
    if checks is not None:  # the many-host bed's: both hosts, its own ledger audit
        bad += checks(s, api, pool, case, started, status)
    else:
        bad += resource_violations(s, api, case, started, status)
        audit = ledger_audit(s)
        bad += [] if audit == {"domains": [], "dirs": []} else [f"ledger audit {audit}"]
        bad += [f"partial {p}" for p in partial_files(s)]
    drop_made(api, case, started.resource)
    return {**b.as_dict(), "fired": fired, "outcome": status, "violations": bad,
            "seconds": round(time.time() - t0, 1)}


def resource_violations(s: Settings, api: httpx.Client, case: Case, started: Started,
                        status: str) -> list[str]:
    """The server's or share's checks, then what the case itself says must hold."""
    bad: list[str] = []
    if case.kind in ("server", "share"):
        check = server_violations if case.kind == "server" else share_violations
        bad += check(s, api, case, started.resource, status)
    return bad + (case.check(s, api, started, status) if case.check else [])


def drop_made(api: httpx.Client, case: Case, resource: str) -> None:
    """A launch's server and a created share go again, so cells do not pile up guests."""
    if case.workflow_type == "LaunchInstance":
        if api.get(f"/v1/servers/{resource}").status_code == 200:
            delete_server(api, resource)
    elif case.workflow_type == "CreateShare":
        api.delete(f"/v1/shares/{resource}")
        share_gone(api, resource)


def record(result: dict[str, Any]) -> None:
    """Appended to VMFLOW_FAULT_RESULTS (a JSONL file) when set: `make faults` reads it."""
    path = os.environ.get("VMFLOW_FAULT_RESULTS")
    if path:
        with Path(path).open("a") as f:
            f.write(json.dumps(result) + "\n")

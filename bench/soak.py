"""A chaos soak: servers and shares under a random mix of every operation the API
offers, while workers, Temporal and libvirtd are killed at random; then every
invariant is checked and everything deleted.

    .venv/bin/python bench/soak.py [--servers 3] [--shares 2] [--duration 600]
        [--max-ops 500] [--fault-every 30 60] [--parallel 3] [--seed N]   # or: make soak

Starts a private stack (two namespaced hypervisor hosts and a storage host; home under
/var/tmp, free ports, host names of this run's own), removed at the end also on Ctrl-C
or SIGTERM. Prints operations run per type, faults injected per kind, 409s, invariant
violations (target 0) and the slowest operation per type; writes
bench/results/soak.json. Exits 1 if any invariant was violated.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.common import GUEST, PREFIX, RESULTS
from bench.migrate import wait_hosts_up
from bench.soak_checks import (
    check_exports,
    check_ledger,
    check_operations,
    check_servers,
    explain,
    remains,
    wait_quiet,
)
from bench.soak_faults import Injector, recover
from bench.soak_ops import Actor, Tally, wait_op
from bench.soak_report import report
from tests.home_cleanup import teardown_home
from vmflow import hostbed, stack
from vmflow.processes import free_port
from vmflow.settings import Settings

BIG_FLAVOR = "soak.big"  # t1.micro's disk (a resize never shrinks one), more of the rest
QUIET_TIMEOUT_S = 900.0
SUBNET = "10.98.0.0/24"


@contextmanager
def soak_stack() -> Iterator[tuple[Settings, httpx.Client]]:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up as on Ctrl-C
    home = Path(tempfile.mkdtemp(prefix="vmflow-soak-", dir="/var/tmp"))
    home.chmod(0o755)  # qemu must traverse to the disks
    s = Settings(home=home, api_port=free_port(), temporal_address=f"127.0.0.1:{free_port()}",
                 temporal_ui_port=free_port(), host=f"sk{os.getpid()}", hosts=2,
                 storage_hosts=1, domain_prefix=PREFIX, guest_cache=GUEST,
                 stop_timeout=30, reboot_timeout=10)
    try:
        stack.ensure_guest(s)
        stack.up(s)
        with client(s) as api:
            wait_hosts_up(api, hostbed.host_names(s))
            yield s, api
    finally:
        try:
            stack.down(s)  # powers both hosts off (their guests die), deletes namespaces
        finally:
            teardown_home(home)  # the share pool's mounts and loop device too


def client(s: Settings) -> httpx.Client:
    token = s.admin_token_file.read_text().strip()
    return httpx.Client(base_url=s.base_url, timeout=30,
                        headers={"Authorization": f"Bearer {token}"})


def created(api: httpx.Client, path: str, body: dict[str, Any], key: str) -> str:
    """Made and succeeded; a create that compensated (a slow boot on a loaded machine)
    is tried again, up to three times."""
    for _ in range(3):
        r = api.post(path, json=body)
        if r.status_code != 202:
            raise RuntimeError(f"POST {path} {body}: {r.status_code} {r.text}")
        op = wait_op(api, r.json()["operation"]["id"], timeout=600)
        if op["status"] == "succeeded":
            rid: str = r.json()[key]["id"]
            return rid
        print(f"  POST {path} {body} ended {op['status']}: {op.get('last_error')}", flush=True)
    raise RuntimeError(f"POST {path} {body} never succeeded")


def network(api: httpx.Client) -> str:
    """A tenant network with a subnet, for interface attach/detach."""
    r = api.post("/v1/networks", json={"name": "soak-net"})
    if r.status_code not in (200, 201):
        raise RuntimeError(f"network: {r.status_code} {r.text}")
    net_id: str = r.json()["id"]
    r = api.post("/v1/subnets", json={"network_id": net_id, "cidr": SUBNET})
    if r.status_code not in (200, 201):
        raise RuntimeError(f"subnet: {r.status_code} {r.text}")
    return net_id


def populate(api: httpx.Client, servers: int, shares: int) -> tuple[list[str], list[str],
                                                                       tuple[str, str]]:
    r = api.post("/v1/flavors", json={"name": BIG_FLAVOR, "vcpus": 1, "ram": 320, "disk": 1})
    if r.status_code not in (200, 201):
        raise RuntimeError(f"flavor: {r.status_code} {r.text}")
    flavors = (str(api.get("/v1/flavors/t1.micro").json()["id"]), str(r.json()["id"]))
    sids = [created(api, "/v1/servers", {"name": f"soak-{n}", "image": "tiny",
                                         "flavor": "t1.micro"}, "server")
            for n in range(servers)]
    shids = [created(api, "/v1/shares", {"share_proto": "NFS", "size": 1,
                                         "name": f"soak-{n}"}, "share")
             for n in range(shares)]
    print(f"launched {len(sids)} servers, {len(shids)} shares", flush=True)
    return sids, shids, flavors


def churn(s: Settings, args: argparse.Namespace, tally: Tally, resources: list[tuple[str, str]],
          flavors: tuple[str, str], net_id: str) -> int:
    """Up to --parallel actions at once, one per resource, until the time or the count
    runs out; returns how many were started."""
    busy: set[str] = set()
    lock = threading.Lock()
    local = threading.local()
    deadline = time.monotonic() + args.duration
    started = 0

    def one(kind: str, rid: str, seed: int) -> None:
        try:
            if not hasattr(local, "actor"):
                local.actor = Actor(client(s), random.Random(seed), tally,
                                    hostbed.host_names(s), flavors, net_id)
            actor: Actor = local.actor
            (actor.server_step if kind == "server" else actor.share_step)(rid)
        except Exception as e:  # noqa: BLE001 - a soak bug, not the product's: counted
            tally.refused[f"{kind} step raised {type(e).__name__}: {e}"[:200]] += 1
        finally:
            with lock:
                busy.discard(rid)

    rng = random.Random(args.seed)
    with ThreadPoolExecutor(args.parallel) as pool:
        futures: set[Future[None]] = set()
        while time.monotonic() < deadline and started < args.max_ops:
            # any resource, busy or not, so a quick share does not crowd out the
            # servers; a busy one is waited for
            kind, rid = rng.choice(resources)
            with lock:
                free = rid not in busy
                busy.add(rid)
            if len(futures) < args.parallel and free:
                futures.add(pool.submit(one, kind, rid, rng.randrange(2**32)))
                started += 1
                time.sleep(rng.uniform(0, 1))  # not all at the same instant
                continue
            if free:
                with lock:
                    busy.discard(rid)
            _, futures = wait(futures, timeout=1, return_when=FIRST_COMPLETED)
        print(f"churn over ({started} actions started); waiting for the last ones",
              flush=True)
    return started


def settle(api: httpx.Client, sids: list[str]) -> None:
    """Resizes left waiting for a confirmation are confirmed: a resting server."""
    for sid in sids:
        server = api.get(f"/v1/servers/{sid}").json()
        if server.get("status") == "VERIFY_RESIZE":
            r = api.post(f"/v1/servers/{sid}/action", json={"confirmResize": None})
            if r.status_code == 202:
                wait_op(api, r.json()["operation"]["id"], timeout=600)


def delete(api: httpx.Client, path: str, timeout: float = 60) -> httpx.Response:
    """DELETE, again while the API says 409: the resource's last operation ends a
    moment before its workflow closes, and a share's snapshots go one at a time."""
    deadline = time.monotonic() + timeout
    r = api.delete(path)
    while r.status_code == 409 and time.monotonic() < deadline:
        time.sleep(1)
        r = api.delete(path)
    return r


def delete_all(api: httpx.Client, tally: Tally) -> list[dict[str, Any]]:
    """Snapshots (one at a time), then shares and servers, then the images they made;
    each delete followed to its end."""
    out: list[dict[str, Any]] = []
    ends: list[dict[str, Any]] = []

    def followed(paths: list[str], one_by_one: bool) -> None:
        accepted = []
        for path in paths:
            r = delete(api, path)
            if r.status_code != 202:
                out.append({"check": "delete refused", "path": path, "code": r.status_code,
                            "body": r.text[:200]})
            elif one_by_one:
                ends.append(wait_op(api, r.json()["operation"]["id"], 600))
            else:
                accepted.append(r.json()["operation"]["id"])
        ends.extend(wait_op(api, op_id, 900) for op_id in accepted)

    followed([f"/v1/share-snapshots/{x['id']}"
              for x in api.get("/v1/share-snapshots").json()["snapshots"]], True)
    followed([f"/v1/shares/{x['id']}" for x in api.get("/v1/shares").json()["shares"]]
             + [f"/v1/servers/{x['id']}" for x in api.get("/v1/servers").json()["servers"]],
             False)
    for image in tally.images:
        api.delete(f"/v1/images/{image}")
    out += [{"check": f"delete {op['status']}", "id": op["id"],
             "last_error": op.get("last_error")}
            for op in ends if op["status"] not in ("succeeded", "compensated")]
    return out


def soak(args: argparse.Namespace) -> dict[str, Any]:
    tally = Tally()
    out: dict[str, Any] = {"seed": args.seed, "options": {k: v for k, v in vars(args).items()}}
    t0 = time.monotonic()
    with soak_stack() as (s, api):
        out["home"] = str(s.home)
        sids, shids, flavors = populate(api, args.servers, args.shares)
        net_id = network(api)
        injector = Injector(s, random.Random(args.seed + 1), tuple(args.fault_every))
        injector.start()
        started = churn(s, args, tally, [("server", x) for x in sids]
                        + [("share", x) for x in shids], flavors, net_id)
        injector.finish()
        out["recover_error_at_end"] = recover(s)
        still = wait_quiet(api, QUIET_TIMEOUT_S)
        settle(api, sids)
        wait_quiet(api, QUIET_TIMEOUT_S)
        violations = check_operations(api)
        bad_servers, notes = check_servers(s, api)
        violations += bad_servers + check_ledger(s) + check_exports(s, api)
        listed = {v.get("id") for v in violations}
        violations += [{"check": "action ended badly", "id": r["op"], "type": r["kind"],
                        "resource": r["resource"], "status": r["status"],
                        "last_error": r["last_error"]} for r in tally.records
                       if r["status"] not in ("succeeded", "compensated")
                       and r["op"] not in listed]
        for v in violations:
            explain(s, v, injector.faults)
        print(f"invariants checked: {len(violations)} violation(s); now deleting everything",
              flush=True)
        violations += delete_all(api, tally)
        wait_quiet(api, QUIET_TIMEOUT_S)
        violations += remains(s)
        out.update(started=started, still_running_after_quiet=len(still), notes=notes,
                   records=tally.records, faults=injector.faults, violations=violations,
                   conflicts=dict(tally.conflicts), refused=dict(tally.refused),
                   unavailable=dict(tally.unavailable), wall_s=round(time.monotonic() - t0))
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--servers", type=int, default=3)
    p.add_argument("--shares", type=int, default=2)
    p.add_argument("--duration", type=float, default=600, help="seconds of churn")
    p.add_argument("--max-ops", type=int, default=500, help="actions started at most")
    p.add_argument("--fault-every", type=float, nargs=2, default=[30.0, 60.0],
                   metavar=("MIN", "MAX"), help="seconds between faults, drawn uniformly")
    p.add_argument("--parallel", type=int, default=3, help="actions in flight at once")
    p.add_argument("--seed", type=int, default=random.randrange(2**31))
    p.add_argument("--out", type=Path, default=RESULTS / "soak.json")
    args = p.parse_args()
    print(f"soak: seed {args.seed}", flush=True)
    result = soak(args)
    summary = report(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({**summary, "detail": result}, indent=1, default=str) + "\n")
    print(f"wrote {args.out}")
    return 1 if result["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())

"""Server lists at scale: 10k servers in one project (rows written directly, each with
a port, a fixed IP and metadata, plus 1k in another project), then GET /v1/servers and
the compute facade's GET /servers[/detail] through the real app (uvicorn on a free
loopback port, a Temporal dev server of its own), on SQLite and on PostgreSQL. Query
shapes alternate request by request; p50/p95/p99 per shape against the target
p99 <= 50 ms; writes bench/results/list_servers.json. See bench/README.md.

    .venv/bin/python bench/list_servers.py [--servers 10000] [--rounds 3] [--per-round 100]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, text
from sqlmodel import Session, col, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import temporal_dev_server  # noqa: E402
from tests.postgres import private_postgres  # noqa: E402
from vmflow import db  # noqa: E402
from vmflow.bootstrap import bootstrap  # noqa: E402
from vmflow.models import Flavor, Image, Instance  # noqa: E402
from vmflow.network_models import IpAllocation, Network, Port, Subnet  # noqa: E402
from vmflow.processes import free_port  # noqa: E402
from vmflow.settings import Settings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
TARGET_P99_MS = 50.0
PAGE = 100
INFO = {"v1 no limit (1000 rows)"}  # measured for information: no target for a full page
HOSTS = [f"hv-{n:02}" for n in range(20)]
# vm_state, task_state, weight: mostly running, some stopped, failed, rebooting, deleted
STATES = [("active", None, 78), ("stopped", None, 10), ("error", None, 4),
          ("active", "rebooting", 3), ("deleted", None, 5)]


def api_user(api: httpx.Client, admin: dict[str, str], name: str, project: str) -> str:
    """A member of a new project; its token."""
    api.post("/v1/projects", headers=admin, json={"name": project}).raise_for_status()
    api.post("/v1/users", headers=admin, json={"name": name, "password": f"pw-{name}-x",
                                               "project": project, "role": "member"}
             ).raise_for_status()
    r = api.post("/v1/tokens", json={"username": name, "password": f"pw-{name}-x",
                                     "project": project})
    return str(r.raise_for_status().json()["token"])


def seed(url: str, project: str, user: str, n: int, rng: random.Random, prefix: str) -> None:
    """n servers of one project, created over 30 days, each with a port and an IP."""
    engine = db.engine_for(url)
    with Session(engine) as s:
        flavor = s.exec(select(Flavor).where(Flavor.name == "m1.tiny")).one()
        image = Image(name=f"{prefix}-img", status="active", disk_format="qcow2",
                      visibility="public", size=1 << 20)
        net = Network(name=f"{prefix}-net", project_id=project,
                      segmentation_id=rng.randrange(1 << 20, 1 << 23))
        sub = Subnet(network_id=net.id, project_id=project, cidr="10.0.0.0/8")
        s.add_all([image, net, sub])
        s.commit()
        image_id, flavor_id, net_id, sub_id = image.id, flavor.id, net.id, sub.id
    start = datetime(2026, 1, 1, tzinfo=UTC)
    insts, ports, ips = [], [], []
    for i in range(n):
        vm, task, _ = rng.choices(STATES, weights=[w for *_, w in STATES])[0]
        created = start + timedelta(seconds=rng.randrange(30 * 86400))
        inst = Instance(name=f"{prefix}-{i:05}", project_id=project, user_id=user,
                        image_id=image_id, flavor_id=flavor_id, host=rng.choice(HOSTS),
                        vm_state=vm, task_state=task, meta={"role": rng.choice("abc")},
                        created_at=created,
                        updated_at=created + timedelta(seconds=rng.randrange(86400)),
                        deleted_at=created if vm == "deleted" else None)
        port = Port(network_id=net_id, project_id=project, device_id=inst.id,
                    device_owner="compute:nova",
                    mac_address=f"fa:16:{prefix[:2].encode().hex()}:{i >> 16 & 255:02x}:"
                                f"{i >> 8 & 255:02x}:{i & 255:02x}")
        insts.append(inst.model_dump())
        ports.append(port.model_dump())
        ips.append({"network_id": net_id, "ip_address": f"10.{i >> 16}.{i >> 8 & 255}."
                    f"{i & 255}", "subnet_id": sub_id, "port_id": port.id})
    with engine.begin() as c:
        for table, rows in ((Instance, insts), (Port, ports), (IpAllocation, ips)):
            for k in range(0, len(rows), 2000):
                c.execute(insert(table), rows[k:k + 2000])
        c.execute(text("ANALYZE"))  # the planner's statistics, as a database in use has


@contextmanager
def uvicorn(home: Path, url: str, temporal: str) -> Iterator[tuple[str, int]]:
    """The real app in its own process on a free loopback port."""
    port = free_port()
    env = {**os.environ, "VMFLOW_HOME": str(home), "VMFLOW_DATABASE_URL": url,
           "VMFLOW_TEMPORAL_ADDRESS": temporal,
           "VMFLOW_GUEST_CACHE": str(home / "no-guest")}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "api.app:create_app",
                             "--factory", "--host", "127.0.0.1", "--port", str(port),
                             "--log-level", "warning"], cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):  # bounded: 30 s
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code < 500:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError("the API did not start")
        yield base, proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


def shapes(ids: list[str], rng: random.Random) -> dict[str, Callable[[], tuple[str, str]]]:
    """Each query shape: a function giving (who, path) for one request. Markers are
    drawn at random over the whole list, so pages come from anywhere in it."""
    return {
        "v1 first page": lambda: ("member", f"/v1/servers?limit={PAGE}"),
        "v1 page at a marker": lambda: ("member",
                                        f"/v1/servers?limit={PAGE}&marker={rng.choice(ids)}"),
        "v1 name substring": lambda: ("member",  # a substring anywhere in the name
                                      f"/v1/servers?limit={PAGE}&name=0{rng.randrange(10)}"),
        "v1 status=SHUTOFF": lambda: ("member", f"/v1/servers?limit={PAGE}&status=SHUTOFF"),
        "v1 host (admin)": lambda: ("admin",
                                    f"/v1/servers?limit={PAGE}&host={rng.choice(HOSTS)}"),
        "v1 changes-since": lambda: ("member", f"/v1/servers?limit={PAGE}&changes-since="
                                               f"2026-01-{rng.randrange(20, 29)}T00:00:00Z"),
        "compute /servers": lambda: ("member", f"/compute/v2.1/servers?limit={PAGE}"
                                               f"&marker={rng.choice(ids)}"),
        "compute /servers/detail": lambda: ("member", f"/compute/v2.1/servers/detail?limit="
                                                      f"{PAGE}&marker={rng.choice(ids)}"),
        "v1 no limit (1000 rows)": lambda: ("member", "/v1/servers"),
    }


def measure(label: str, url: str, temporal: str, args: argparse.Namespace) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="vmflow-benchlist-", dir="/var/tmp"))
    try:
        s = Settings(home=home, database_url=url, guest_cache=home / "no-guest")
        bootstrap(s)
        rng = random.Random(7)
        admin_h = {"Authorization": f"Bearer {s.admin_token_file.read_text().strip()}"}
        with (uvicorn(home, s.db_url, temporal) as (base, pid),
              httpx.Client(base_url=base, timeout=30) as api):
            member = api_user(api, admin_h, "bench-member", "bench-a")
            other = api_user(api, admin_h, "bench-other", "bench-b")
            t = time.perf_counter()
            for token, n, prefix in ((member, args.servers, "s"),
                                     (other, args.servers // 10, "o")):
                seed(s.db_url, *whoami(s.db_url, token), n, rng, prefix)
            seed_s = time.perf_counter() - t
            with Session(db.engine_for(s.db_url)) as ses:
                ids = list(ses.exec(select(Instance.id).where(
                    col(Instance.name).startswith("s-"), col(Instance.deleted_at).is_(None))))
            heads = {"member": {"Authorization": f"Bearer {member}"}, "admin": admin_h}
            shape = shapes(ids, rng)
            lat: dict[str, list[float]] = {k: [] for k in shape}
            cpu_ms: dict[str, float] = {k: 0.0 for k in shape}
            rows: dict[str, int] = {}
            rounds = []
            for _ in range(5):  # warm: connections, caches, the first imports
                for make in shape.values():
                    who_, path = make()
                    api.get(path, headers=heads[who_]).raise_for_status()
            for r in range(args.rounds):
                load_before = os.getloadavg()[0]
                t0 = time.perf_counter()
                for i in range(args.per_round):
                    for name, make in shape.items():  # alternate shapes request by request
                        if name in INFO and i % 10:
                            continue  # 1000 rows a time: for information, 1 in 10
                        who_, path = make()
                        c, a = cpu_s(pid), time.perf_counter()
                        resp = api.get(path, headers=heads[who_])
                        lat[name].append((time.perf_counter() - a) * 1000)
                        cpu_ms[name] += (cpu_s(pid) - c) * 1000
                        resp.raise_for_status()
                        rows[name] = len(resp.json()["servers"])
                rounds.append({"round": r + 1, "load_avg_1m_before": round(load_before, 2),
                               "load_avg_1m_after": round(os.getloadavg()[0], 2),
                               "seconds": round(time.perf_counter() - t0, 1)})
                print(f"  {label} round {r + 1}: load {load_before:.2f} -> "
                      f"{os.getloadavg()[0]:.2f}", flush=True)
        out: dict[str, Any] = {"db": label, "servers": args.servers,
                               "other_project_servers": args.servers // 10,
                               "seed_s": round(seed_s, 1), "rounds": rounds, "shapes": {}}
        for name, xs in lat.items():
            q = statistics.quantiles(xs * 2 if len(xs) < 2 else xs, n=100, method="inclusive")
            out["shapes"][name] = {
                "requests": len(xs), "rows_per_response": rows[name],
                "p50_ms": round(q[49], 2), "p95_ms": round(q[94], 2), "p99_ms": round(q[98], 2),
                "max_ms": round(max(xs), 2),
                "api_cpu_ms_mean": round(cpu_ms[name] / len(xs), 2),
                "target_met": None if name in INFO else q[98] <= TARGET_P99_MS}
        return out
    finally:
        shutil.rmtree(home, ignore_errors=True)


def cpu_s(pid: int) -> float:
    """The API process's CPU seconds so far (user + system, all its threads): in clock
    ticks, so one request reads 0 or 10 ms, but the mean over hundreds is sound, and
    it hardly depends on what else the machine runs, unlike the latencies."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def whoami(url: str, token: str) -> tuple[str, str]:
    """(project, user) of a token, read from the database as the API reads it."""
    from vmflow.identity import hash_token
    from vmflow.models import Token
    with Session(db.engine_for(url)) as s:
        row = s.get(Token, hash_token(token))
        assert row is not None
        return row.project_id, row.user_id


def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="vmflow-benchlist-t-", dir="/var/tmp"))
    try:
        with temporal_dev_server(tmp) as temporal:
            results = [measure("sqlite", "", temporal, args)]
            if not args.no_postgres:
                with private_postgres("vmflow-benchlist-") as pg:
                    results.append(measure("postgresql", pg, temporal, args))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n{'db':<11}{'shape':<28}{'rows':>6}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
          f"{'cpu ms':>8}  target")
    for r in results:
        for name, x in r["shapes"].items():
            met = {True: "met", False: "NOT met", None: "(info)"}[x["target_met"]]
            print(f"{r['db']:<11}{name:<28}{x['rows_per_response']:>6}{x['p50_ms']:>9}"
                  f"{x['p95_ms']:>9}{x['p99_ms']:>9}{x['api_cpu_ms_mean']:>8}  {met}")
    doc = {"when": datetime.now(UTC).isoformat(timespec="seconds"),
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                       "python": platform.python_version()},
           "target_p99_ms": TARGET_P99_MS, "page": PAGE, "results": results}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "list_servers.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {RESULTS / 'list_servers.json'}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--servers", type=int, default=10000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--per-round", type=int, default=100)
    p.add_argument("--no-postgres", action="store_true")
    main(p.parse_args())

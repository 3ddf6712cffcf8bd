"""Two API processes on one database: the way a deployment scales the API out. Each is
a real `python -m api` (uvicorn) against the package's real Temporal dev server, once
on SQLite and once on PostgreSQL (tests/postgres.py); no worker polls, so what the
API starts stays running and no guest is needed. Requests are spread over both.

- 50 concurrent metadata merges of distinct keys on one server keep all 50 (the
  server's row is held from the read to the commit: vmflow.db.lock_row);
- 20 requests with one Idempotency-Key make one server and all answer with it (the
  database keeps one Operation row per project and key; a request that loses that
  race to the other process answers with the winner's server);
- with a quota of N, M > N concurrent creates give exactly N successes (instances,
  cores, RAM: 403; shares, gigabytes: 413; floating IPs: 409 OverQuota, as Neutron).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from tests.conftest import bearer
from tests.postgres import PG_BIN, private_postgres
from vmflow import db
from vmflow.models import Flavor, Image, Instance, Operation, Share
from vmflow.network_models import FloatingIp
from vmflow.processes import free_port

M = 8  # concurrent creates against a quota of N
N = 3


@dataclass
class Pair:
    clients: list[httpx.AsyncClient]
    admin: dict[str, str]
    engine: Engine
    home: Path

    def client(self, i: int) -> httpx.AsyncClient:
        return self.clients[i % 2]


def _wait_up(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"python -m api exited: {log.read_text()[-2000:]}")
        try:
            httpx.get(f"{url}/healthz", timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"python -m api did not answer at {url}: {log.read_text()[-2000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def two_apis_env(request: pytest.FixtureRequest, temporal_address: str,
                 tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[tuple[list[str], Path, str]]:
    if request.param == "postgresql" and not (PG_BIN / "pg_ctl").exists():
        pytest.fail(f"PostgreSQL is not installed ({PG_BIN})")
    with ExitStack() as stack:
        url = stack.enter_context(private_postgres("vmflow-2api-")) \
            if request.param == "postgresql" else ""
        home = tmp_path_factory.mktemp(f"two-apis-{request.param}")
        env = {**os.environ, "VMFLOW_HOME": str(home), "VMFLOW_DATABASE_URL": url,
               "VMFLOW_TEMPORAL_ADDRESS": temporal_address,
               "VMFLOW_TEMPORAL_NAMESPACE": "default",
               "VMFLOW_GUEST_CACHE": str(home / "no-guest")}
        subprocess.run([sys.executable, "-m", "vmflow.bootstrap"], env=env, check=True,
                       capture_output=True)
        urls = []
        for i in range(2):
            port = free_port()
            log = home / f"api{i}.log"
            out = stack.enter_context(log.open("wb"))
            proc = subprocess.Popen([sys.executable, "-m", "api"], stdout=out,
                                    stderr=subprocess.STDOUT,
                                    env={**env, "VMFLOW_API_PORT": str(port)})
            stack.callback(_stop, proc)
            urls.append(f"http://127.0.0.1:{port}")
            _wait_up(urls[-1], proc, log)
        yield urls, home, url or f"sqlite:///{home / 'vmflow.db'}"


@pytest.fixture
async def pair(two_apis_env: tuple[list[str], Path, str]) -> AsyncIterator[Pair]:
    urls, home, db_url = two_apis_env
    admin = bearer((home / "admin-token").read_text().strip())
    async with httpx.AsyncClient(base_url=urls[0], timeout=60) as a, \
            httpx.AsyncClient(base_url=urls[1], timeout=60) as b:
        yield Pair([a, b], admin, db.engine_for(db_url), home)


_projects = iter(range(10**6))


@dataclass(frozen=True)
class Member:
    h: dict[str, str]
    project_id: str
    user_id: str


async def member(p: Pair, name: str, **quota: int) -> Member:
    """A member of a new project of its own (with these quota limits)."""
    project = f"{name}-{next(_projects)}"
    r = await p.client(0).post("/v1/projects", headers=p.admin, json={"name": project})
    assert r.status_code == 201, r.text
    r = await p.client(1).post("/v1/users", headers=p.admin, json={
        "name": project, "password": "pw-two-apis", "project": project, "role": "member"})
    assert r.status_code == 201, r.text
    r = await p.client(0).post("/v1/tokens", json={
        "username": project, "password": "pw-two-apis", "project": project})
    assert r.status_code == 201, r.text
    body = r.json()
    if quota:
        r = await p.client(1).put(f"/v1/quota-sets/{body['project_id']}", headers=p.admin,
                                  json=quota)
        assert r.status_code == 200, r.text
    return Member(bearer(body["token"]), body["project_id"], body["user_id"])


def image_id(p: Pair) -> str:
    with Session(p.engine, expire_on_commit=False) as s:
        image = s.exec(select(Image).where(Image.name == "two-apis")).first()
        if image is None:
            image = Image(name="two-apis", status="active", disk_format="qcow2",
                          visibility="public", size=1 << 20)
            s.add(image)
            s.commit()
        return image.id


def tiny(p: Pair) -> Flavor:
    with Session(p.engine, expire_on_commit=False) as s:
        return s.exec(select(Flavor).where(Flavor.name == "m1.tiny")).one()


def count(p: Pair, model: type, **where: Any) -> int:
    with Session(p.engine) as s:
        stmt = select(func.count()).select_from(model)
        for k, v in where.items():
            stmt = stmt.where(getattr(model, k) == v)
        return int(s.exec(stmt).one())


async def race(p: Pair, n: int, method: str, path: str, headers: dict[str, str],
               body: Any) -> list[httpx.Response]:
    """n requests at once, alternating between the two processes."""
    return list(await asyncio.gather(*(
        p.client(i).request(method, path, headers=headers,
                            json=body(i) if callable(body) else body)
        for i in range(n))))


def statuses(rs: list[httpx.Response]) -> list[int]:
    return sorted(r.status_code for r in rs)


# --- lost updates ----------------------------------------------------------------------------

async def test_50_concurrent_metadata_merges_keep_all_50(pair: Pair) -> None:
    who = await member(pair, "meta")
    h = who.h
    with Session(pair.engine, expire_on_commit=False) as s:
        inst = Instance(name="meta", project_id=who.project_id, user_id=who.user_id,
                        image_id=image_id(pair), flavor_id=tiny(pair).id, host="h1",
                        vm_state="active", meta={"keep": "me"})
        s.add(inst)
        s.commit()
    rs = await race(pair, 50, "POST", f"/v1/servers/{inst.id}/metadata", h,
                    lambda i: {"metadata": {f"k{i}": str(i)}})
    assert statuses(rs) == [200] * 50, [r.text for r in rs if r.status_code != 200][:3]
    for c in pair.clients:
        meta = (await c.get(f"/v1/servers/{inst.id}/metadata", headers=h)).json()["metadata"]
        assert meta == {"keep": "me", **{f"k{i}": str(i) for i in range(50)}}


# --- one Idempotency-Key, two processes ------------------------------------------------------

async def test_20_requests_with_one_key_make_one_server(pair: Pair) -> None:
    who = await member(pair, "idem")
    h = {**who.h, "Idempotency-Key": "two-apis-one-server"}
    body = {"name": "idem-one", "image": image_id(pair), "flavor": "m1.tiny"}
    rs = await race(pair, 20, "POST", "/v1/servers", h, body)
    assert statuses(rs) == [202] * 20, [r.text for r in rs if r.status_code != 202]
    won = rs
    assert {r.json()["server"]["id"] for r in won} == {won[0].json()["server"]["id"]}
    assert count(pair, Instance, project_id=who.project_id) == 1
    assert count(pair, Operation, idempotency_key="two-apis-one-server") == 1
    for c in pair.clients:  # a retry gets the one server, from either process
        r = await c.post("/v1/servers", headers=h, json=body)
        assert r.status_code == 202 and r.json()["server"]["id"] == won[0].json()["server"]["id"]
    assert count(pair, Instance, project_id=who.project_id) == 1


async def test_a_key_raced_on_another_route_makes_one_share(pair: Pair) -> None:
    """Routes without the server's replay on a lost race: the loser is 409
    IdempotencyKeyInProgress, nothing of it is kept, and its retry replays."""
    who = await member(pair, "idem-share")
    h = {**who.h, "Idempotency-Key": "two-apis-one-share"}
    body = {"share_proto": "nfs", "size": 1, "name": "one"}
    rs = await race(pair, 20, "POST", "/v1/shares", h, body)
    won = [r for r in rs if r.status_code == 202]
    busy = [r for r in rs if r.status_code != 202]
    assert won and all(r.status_code == 409 and r.json()["error"]["type"] ==
                       "IdempotencyKeyInProgress" for r in busy), [r.text for r in busy]
    share_id = won[0].json()["share"]["id"]
    assert {r.json()["share"]["id"] for r in won} == {share_id}
    assert count(pair, Share, project_id=who.project_id) == 1
    for c in pair.clients:
        r = await c.post("/v1/shares", headers=h, json=body)
        assert r.status_code == 202 and r.json()["share"]["id"] == share_id
    assert count(pair, Share, project_id=who.project_id) == 1


# --- quotas under concurrent creates ---------------------------------------------------------

async def server_race(p: Pair, **quota: int) -> tuple[Member, list[httpx.Response]]:
    who = await member(p, "q-" + "-".join(quota), **quota)
    rs = await race(p, M, "POST", "/v1/servers", who.h,
                    lambda i: {"name": f"q{i}", "image": image_id(p), "flavor": "m1.tiny"})
    return who, rs


@pytest.mark.parametrize("resource", ["instances", "cores", "ram"])
async def test_server_quotas_hold_under_concurrent_creates(pair: Pair, resource: str) -> None:
    flavor = tiny(pair)
    per = {"instances": 1, "cores": flavor.vcpus, "ram": flavor.ram_mb}[resource]
    who, rs = await server_race(pair, **{resource: N * per})
    assert statuses(rs) == [202] * N + [403] * (M - N), [r.text for r in rs]
    assert {r.json()["error"]["type"] for r in rs if r.status_code == 403} == {"QuotaExceeded"}
    assert count(pair, Instance, project_id=who.project_id) == N


@pytest.mark.parametrize("resource", ["shares", "gigabytes"])
async def test_share_quotas_hold_under_concurrent_creates(pair: Pair, resource: str) -> None:
    who = await member(pair, f"q-{resource}", **{resource: N})
    rs = await race(pair, M, "POST", "/v1/shares", who.h,
                    lambda i: {"share_proto": "nfs", "size": 1, "name": f"s{i}"})
    assert statuses(rs) == [202] * N + [413] * (M - N), [r.text for r in rs]
    assert count(pair, Share, project_id=who.project_id) == N


async def test_floating_ip_quota_holds_under_concurrent_creates(pair: Pair) -> None:
    c = pair.client(0)
    r = await c.post("/v1/networks", headers=pair.admin,
                     json={"router:external": True, "name": f"ext-{next(_projects)}"})
    assert r.status_code == 201, r.text
    net = r.json()["id"]
    r = await c.post("/v1/subnets", headers=pair.admin,
                     json={"network_id": net, "cidr": "203.0.113.0/24"})
    assert r.status_code == 201, r.text
    who = await member(pair, "q-fip", floating_ips=N)
    rs = await race(pair, M, "POST", "/v1/floating-ips", who.h, {"floating_network_id": net})
    assert statuses(rs) == [201] * N + [409] * (M - N), [r.text for r in rs]
    assert {r.json()["error"]["type"] for r in rs if r.status_code == 409} == {"OverQuota"}
    assert count(pair, FloatingIp, project_id=who.project_id) == N

"""GET /v1/servers (and the compute facade's GET /servers[/detail], which shares its
query builder): limit/marker paging that walks every row exactly once, Nova's filters
in SQL, 400s that change nothing, project isolation, and a number of SQL statements
per page that does not grow with the page (no N+1). Rows are written directly."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from api.services.server_nics import DEVICE_OWNER
from api.services.servers import MAX_LIMIT
from tests.api.conftest import Caller, World, counts, flavor_id, make_caller, session
from vmflow import db
from vmflow.models import Instance
from vmflow.network_models import IpAllocation, Network, Port, Subnet

C = "/compute/v2.1"
T0 = datetime(2030, 1, 1, tzinfo=UTC)  # after every other test's rows: changes-since works


@dataclass(frozen=True)
class Projects:
    a: Caller
    a_reader: Caller
    b: Caller


@pytest.fixture(scope="module")
async def projects(api: httpx.AsyncClient, world: World) -> Projects:
    for name in ("list-a", "list-b"):
        r = await api.post("/v1/projects", headers=world.admin.h, json={"name": name})
        assert r.status_code == 201, r.text
    return Projects(a=await make_caller(api, world.admin.h, "list-alice", "list-a", "member"),
                    a_reader=await make_caller(api, world.admin.h, "list-rita", "list-a",
                                               "reader"),
                    b=await make_caller(api, world.admin.h, "list-bob", "list-b", "member"))


def add_rows(world: World, owner: Caller, specs: list[dict[str, Any]]) -> list[Instance]:
    """Instance rows as given (name, vm_state, created_at, ...), in one transaction."""
    tiny = flavor_id("m1.tiny")
    rows = [Instance(project_id=owner.project_id, user_id=owner.user_id,
                     image_id=world.image.id, flavor_id=tiny,
                     **{"host": "h1", "vm_state": "active", **spec}) for spec in specs]
    with session() as s:
        s.add_all(rows)
        s.commit()
    return rows


def order(rows: list[Instance], newest_first: bool = False) -> list[str]:
    return [i.id for i in sorted(rows, key=lambda i: (i.created_at, i.id),
                                 reverse=newest_first)]


async def walk(api: httpx.AsyncClient, who: Caller, url: str, pages: int = 50) -> list[str]:
    """Every id /v1 answers, page after page through `next` (bounded)."""
    seen: list[str] = []
    for _ in range(pages):
        r = await api.get(url, headers=who.h)
        assert r.status_code == 200, r.text
        body = r.json()
        seen += [s["id"] for s in body["servers"]]
        if body["next"] is None:
            return seen
        url = body["next"]
    raise AssertionError(f"more than {pages} pages")


async def ids(api: httpx.AsyncClient, who: Caller, query: str) -> list[str]:
    r = await api.get(f"/v1/servers?{query}", headers=who.h)
    assert r.status_code == 200, r.text
    return [s["id"] for s in r.json()["servers"]]


async def test_paging_walks_every_row_exactly_once(api: httpx.AsyncClient, world: World,
                                                   projects: Projects) -> None:
    # ties on created_at: the id decides, so no row is skipped or repeated at a boundary
    specs = [{"name": f"walk-{n}", "created_at": T0 + timedelta(seconds=n // 3)}
             for n in range(23)]
    rows = add_rows(world, projects.a, specs)
    gone = add_rows(world, projects.a, [{"name": "walk-gone", "vm_state": "deleted",
                                         "deleted_at": T0, "created_at": T0}])
    q = "name=^walk-"
    for limit in (1, 5, 7, 23, 100):
        seen = await walk(api, projects.a, f"/v1/servers?{q}&limit={limit}")
        assert seen == order(rows), limit
    assert gone[0].id not in await ids(api, projects.a, q)
    # the facade: newest first, through servers_links
    seen, url = [], f"{C}/servers?{q}&limit=4"
    for _ in range(20):
        body = (await api.get(url, headers=projects.a.h)).json()
        seen += [s["id"] for s in body["servers"]]
        if "servers_links" not in body:
            break
        url = body["servers_links"][0]["href"].removeprefix("http://vmflow")
    assert seen == order(rows, newest_first=True)
    # a marker deleted since its page was served still leads on (Nova reads deleted ones)
    first = await ids(api, projects.a, f"{q}&limit=5")
    with session() as s:
        row = s.get(Instance, first[-1])
        assert row is not None
        row.vm_state, row.deleted_at = "deleted", datetime.now(UTC)
        s.add(row)
        s.commit()
    assert await ids(api, projects.a, f"{q}&limit=5&marker={first[-1]}") == order(rows)[5:10]


async def test_limit_is_cut_to_the_maximum(api: httpx.AsyncClient, world: World,
                                           projects: Projects) -> None:
    add_rows(world, projects.a, [{"name": f"cap-{n}", "created_at": T0} for n in range(2)])
    r = await api.get(f"/v1/servers?name=^cap-&limit={MAX_LIMIT * 5}", headers=projects.a.h)
    assert r.status_code == 200 and len(r.json()["servers"]) == 2
    r = await api.get("/v1/servers?name=^cap-&limit=1", headers=projects.a.h)
    assert "limit=1" in r.json()["next"]


async def test_filters(api: httpx.AsyncClient, world: World, projects: Projects) -> None:
    later = T0 + timedelta(days=30)
    rows = add_rows(world, projects.a, [
        {"name": "flt-web-1", "host": "hx", "created_at": T0},
        {"name": "flt-web-2", "vm_state": "stopped", "created_at": T0},
        {"name": "flt-db-1", "vm_state": "active", "task_state": "rebooting", "host": "hy",
         "created_at": T0, "updated_at": later},
        {"name": "flt-db-2", "vm_state": "error", "task_state": "deleting", "host": "hy",
         "created_at": T0},
        {"name": "flt-gone", "vm_state": "deleted", "deleted_at": later, "created_at": T0,
         "updated_at": later},
    ])
    web1, web2, db1, db2, gone = (i.id for i in rows)
    a, admin = projects.a, world.admin
    assert await ids(api, a, "name=^flt-") == order(rows[:4])
    assert set(await ids(api, a, "name=web")) == {web1, web2}  # substring: searched
    assert await ids(api, a, "name=^flt-db-[2-9]$") == [db2]
    assert await ids(api, a, "name=^flt-&status=SHUTOFF") == [web2]
    assert await ids(api, a, "name=^flt-&status=active") == [web1]  # db1 is REBOOT
    assert await ids(api, a, "name=^flt-&status=REBOOT") == [db1]
    # a task that does not set the status leaves the vm_state's (deleting: ERROR)
    assert set(await ids(api, a, "name=^flt-&status=ERROR&status=SHUTOFF")) == {db2, web2}
    assert await ids(api, a, "name=^flt-&status=BOGUS") == []
    # host: admins only; a member's is ignored, as Nova ignores it
    assert set(await ids(api, admin, "name=^flt-&host=hy")) == {db1, db2}
    assert len(await ids(api, a, "name=^flt-&host=hy")) == 4
    # changes-since: what changed from then on, deleted servers included (Nova)
    since = "2030-01-02T00:00:00Z"  # a day after T0
    assert set(await ids(api, a, f"name=^flt-&changes-since={since}")) == {db1, gone}
    assert set(await ids(api, a, "name=^flt-&changes-since=2030-01-02")) == {db1, gone}
    r = await api.get(f"/v1/servers?name=^flt-gone&changes-since={since}", headers=a.h)
    assert [s["status"] for s in r.json()["servers"]] == ["DELETED"]
    assert web1 in await ids(api, a, f"name=^flt-&changes-before={since}")
    assert await ids(api, admin, "name=^flt-&status=DELETED") == [gone]
    assert await ids(api, a, f"name=^flt-web&image={world.image.id}") == order(rows[:2])
    assert await ids(api, a, f"name=^flt-&image={uuid.uuid4()}") == []
    # the facade reads the same builder: newest first
    r = await api.get(f"{C}/servers/detail?name=^flt-&status=SHUTOFF&status=REBOOT",
                      headers={**a.h, "X-OpenStack-Nova-API-Version": "2.79"})
    assert [s["id"] for s in r.json()["servers"]] == order([rows[1], rows[2]], True)


@pytest.mark.parametrize("query", [
    "limit=-1", "limit=x", f"marker={uuid.uuid4()}", "changes-since=nope",
    "changes-before=2030-13-01", "name=([", "status=DELETED"])
async def test_bad_input_is_4xx_and_changes_nothing(api: httpx.AsyncClient, world: World,
                                                    projects: Projects, query: str) -> None:
    before = counts()
    for url in (f"/v1/servers?{query}", f"{C}/servers?{query}", f"{C}/servers/detail?{query}"):
        r = await api.get(url, headers=projects.a.h)
        expected = 403 if query == "status=DELETED" else 400  # Nova: admins only
        assert r.status_code == expected, (url, r.text)
    assert counts() == before


async def test_projects_are_isolated(api: httpx.AsyncClient, world: World,
                                     projects: Projects) -> None:
    tag = f"iso{uuid.uuid4().hex[:8]}"  # other modules of the tier name servers iso-*
    a_rows = add_rows(world, projects.a, [{"name": f"{tag}-a", "created_at": T0}])
    b_rows = add_rows(world, projects.b, [{"name": f"{tag}-b", "created_at": T0}])
    for query in ("", f"name={tag}", "changes-since=2000-01-01", "limit=1000"):
        listed = await walk(api, projects.b, f"/v1/servers?{query}")
        assert a_rows[0].id not in listed and b_rows[0].id in listed, query
        r = await api.get(f"/v1/servers?{query}", headers=projects.b.h)
        assert {s["project_id"] for s in r.json()["servers"]} == {projects.b.project_id}
    # A's id is no marker for B: 400, as an unknown one (nothing about A's leaks)
    r = await api.get(f"/v1/servers?marker={a_rows[0].id}", headers=projects.b.h)
    assert r.status_code == 400
    r = await api.get(f"{C}/servers?marker={a_rows[0].id}", headers=projects.b.h)
    assert r.status_code == 400
    admin = await ids(api, world.admin, f"name=^{tag}-")
    assert set(admin) == {a_rows[0].id, b_rows[0].id}


async def test_reader_can_list(api: httpx.AsyncClient, world: World,
                               projects: Projects) -> None:
    rows = add_rows(world, projects.a, [{"name": "read-me", "created_at": T0}])
    assert await ids(api, projects.a_reader, "name=^read-me$") == [rows[0].id]


@contextmanager
def statements() -> Iterator[list[str]]:
    """The SQL statements run meanwhile, on the engine the app uses."""
    seen: list[str] = []
    engine = db.get_engine()

    def count(*args: Any) -> None:
        seen.append(args[2])

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def add_nics(owner: Caller, rows: list[Instance]) -> None:
    """One port with a fixed IP per server: the addresses the views load."""
    with session() as s:
        net = Network(name="list-net", project_id=owner.project_id,
                      segmentation_id=random.randrange(1 << 20, 1 << 23))
        sub = Subnet(network_id=net.id, project_id=owner.project_id, cidr="10.9.0.0/16")
        s.add_all([net, sub])
        s.flush()
        for n, inst in enumerate(rows):
            port = Port(network_id=net.id, project_id=owner.project_id,
                        mac_address=f"fa:16:3e:{n >> 8 & 255:02x}:{n & 255:02x}:"
                                    f"{random.randrange(256):02x}",
                        device_id=inst.id, device_owner=DEVICE_OWNER)
            s.add(port)
            s.flush()
            s.add(IpAllocation(network_id=net.id, ip_address=f"10.9.{n >> 8}.{n & 255}",
                               subnet_id=sub.id, port_id=port.id))
        s.commit()


async def test_statements_per_page_do_not_grow_with_the_page(
        api: httpx.AsyncClient, world: World, projects: Projects) -> None:
    rows = add_rows(world, projects.a, [
        {"name": f"nplus-{n}", "created_at": T0, "meta": {"k": str(n)}} for n in range(40)])
    add_nics(projects.a, rows)
    h = {**projects.a.h, "X-OpenStack-Nova-API-Version": "2.79"}
    for path in ("/v1/servers", f"{C}/servers/detail", f"{C}/servers"):
        per_page = []
        for limit in (2, 40):
            with statements() as seen:
                r = await api.get(f"{path}?name=^nplus-&limit={limit}", headers=h)
            assert r.status_code == 200 and len(r.json()["servers"]) == limit
            per_page.append(len(seen))
        assert per_page[0] == per_page[1], (path, per_page)
    r = await api.get("/v1/servers?name=^nplus-1$", headers=h)
    server = r.json()["servers"][0]
    assert server["metadata"] == {"k": "1"} and server["addresses"]["list-net"]

"""Moves with nowhere to go, on the two-host bed: the only other host is disabled, so
a cold migration, a resize and a live migration each end in NoValidHost, compensated,
and change nothing: the server runs where it ran, with its flavor and its one claim."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import libvirt
import pytest
from sqlmodel import select

from tests.conftest import db_session
from tests.integration.conftest import action, delete_server, wait_operation
from tests.multihost.conftest import domains_of, launch
from vmflow.models import Allocation, Migration
from vmflow.settings import Settings

pytestmark = pytest.mark.guest


@pytest.fixture
def one_host_left(api: httpx.Client, hosts: list[str]) -> Iterator[dict[str, str]]:
    """A server on one host, the other host disabled (both enabled again after)."""
    server = launch(api, "nvh")
    (other,) = set(hosts) - {server["host"]}
    r = api.put(f"/v1/hosts/{other}", json={"status": "disabled",
                                            "disabled_reason": "maintenance"})
    assert r.status_code == 200, r.text
    try:
        yield {"id": server["id"], "host": server["host"], "other": other,
               "flavor_id": server["flavor_id"]}
    finally:
        assert api.put(f"/v1/hosts/{other}", json={"status": "enabled"}).status_code == 200
        delete_server(api, server["id"])


@pytest.mark.parametrize("body", [
    {"migrate": None},
    {"resize": {"flavorRef": "m1.tiny"}},
    {"os-migrateLive": {"host": None, "block_migration": "auto"}},
], ids=["migrate", "resize", "live-migrate"])
def test_no_valid_host_changes_nothing(api: httpx.Client, bed: Settings,
                                       conn: Callable[[str], libvirt.virConnect],
                                       one_host_left: dict[str, str],
                                       body: dict[str, object]) -> None:
    sid, src, other = one_host_left["id"], one_host_left["host"], one_host_left["other"]
    r = action(api, sid, body)
    assert r.status_code == 202, r.text
    op = wait_operation(api, r.json()["operation"]["id"], timeout=180)
    assert op["status"] == "compensated", op
    assert "No valid host" in (op["last_error"] or ""), op
    assert f"{other}: disabled" in op["last_error"] or "maintenance" in op["last_error"], op
    shown = api.get(f"/v1/servers/{sid}").json()
    assert (shown["status"], shown["host"], shown["flavor_id"]) == (
        "ACTIVE", src, one_host_left["flavor_id"])
    assert conn(src).lookupByUUIDString(sid).state()[0] == libvirt.VIR_DOMAIN_RUNNING
    assert sid not in domains_of(conn(other))
    with db_session(bed) as s:
        claims = s.exec(select(Allocation).where(Allocation.host.in_([src, other]))).all()
        mine = [(a.instance_id, a.host) for a in claims
                if a.instance_id == sid or a.host == other]
        rows = s.exec(select(Migration).where(Migration.instance_id == sid)).all()
    assert mine == [(sid, src)]  # the one claim it had; nothing on the other host
    assert all(m.status in ("error", "failed") for m in rows), [m.status for m in rows]

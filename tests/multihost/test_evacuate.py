"""Evacuate on the two-host bed, through the API: a server's host powers off and its
worker stops; once its heartbeat ages the scheduler skips it, and the server is rebuilt
on the other host (same id, name, flavor and metadata; a fresh disk, so what was
written in the guest is gone, as in Nova). When the old host comes back its copy of
the server is removed there, never started."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import libvirt
import pytest
from sqlmodel import select

from tests.conftest import db_session
from tests.integration import guest
from tests.integration.conftest import action, delete_server, wait_operation
from tests.multihost.conftest import domains_of, launch, wait_hosts_up
from vmflow import hostbed, stack
from vmflow.models import Ledger, Migration
from vmflow.settings import Settings

pytestmark = pytest.mark.guest
MARKER = "/evacuate-marker.txt"


def component(hosts: list[str], host: str) -> str:
    return "hypervisor" if host == hosts[0] else f"hypervisor-{host}"


def host_view(api: httpx.Client, name: str) -> dict[str, Any]:
    r = api.get(f"/v1/hosts/{name}")
    assert r.status_code == 200, r.text
    view: dict[str, Any] = r.json()
    return view


def wait_host_state(api: httpx.Client, name: str, want: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while host_view(api, name)["state"] != want:
        assert time.monotonic() < deadline, f"{name} not {want}: {host_view(api, name)}"
        time.sleep(0.5)


def starts_logged(bed: Settings, host: str, sid: str) -> int:
    """How often QEMU started this guest on the host (libvirt's per-domain log)."""
    log = hostbed.host(bed, host).root / "log" / "qemu" / f"{bed.domain_prefix}{sid}.log"
    return log.read_text(errors="replace").count("starting up") if log.exists() else 0


def migration_of(bed: Settings, sid: str) -> Migration:
    with db_session(bed) as s:
        (mig,) = s.exec(select(Migration).where(Migration.instance_id == sid)).all()
        return mig


def test_evacuate_from_a_dead_host_and_clean_up_when_it_returns(
        api: httpx.Client, bed: Settings, hosts: list[str],
        conn: Callable[[str], libvirt.virConnect]) -> None:
    server = launch(api, "ev-a")
    sid, src = server["id"], server["host"]
    (dst,) = set(hosts) - {src}
    assert api.put(f"/v1/servers/{sid}/metadata",
                   json={"metadata": {"role": "db"}}).status_code == 200
    assert guest.sh(sid, f"echo precious > {MARKER} && sync")[0] == 0
    started_before = starts_logged(bed, src, sid)
    assert started_before >= 1
    old_dir = bed.host_dir(src) / "instances" / sid
    assert old_dir.is_dir()
    others: list[str] = []
    try:
        # while the host is up, evacuate is refused and nothing changes
        r = action(api, sid, {"evacuate": {}})
        assert r.status_code == 400 and r.json()["error"]["message"] == (
            f"Compute service of {src} is still in use.")

        # the host powers off and its worker stops: down once its heartbeat ages
        # (the worker first: a power sync in between would see the guest shut off and
        # record it stopped, which is not what a host that dies at once looks like)
        stack.stop_component(bed, component(hosts, src))
        hostbed.stop(hostbed.host(bed, src))
        wait_host_state(api, src, "down", bed.host_down_after + 30)
        # ... and the scheduler skips it (item 10)
        other = launch(api, "ev-other")
        others.append(other["id"])
        assert other["host"] == dst

        op = wait_operation(api, _accepted(action(api, sid, {"evacuate": {}})))
        assert op["status"] == "succeeded", op
        after = api.get(f"/v1/servers/{sid}").json()
        assert (after["id"], after["name"], after["status"], after["host"]) == (
            sid, "ev-a", "ACTIVE", dst)
        assert (after["flavor_id"], after["image_id"]) == (server["flavor_id"],
                                                           server["image_id"])
        assert api.get(f"/v1/servers/{sid}/metadata").json()["metadata"] == {"role": "db"}
        assert conn(dst).lookupByUUIDString(sid).isActive()
        # a fresh disk from the image: the data is gone
        code, _ = guest.sh(sid, f"test -e {MARKER}")
        assert code == 1
        mig = migration_of(bed, sid)
        assert (mig.migration_type, mig.status, mig.source_host, mig.dest_host) == (
            "evacuation", "done", src, dst)
        with db_session(bed) as s:  # the old copy's entries wait for the clean-up
            kinds = {e.kind for e in s.exec(select(Ledger).where(
                Ledger.instance_id == sid, Ledger.host == src))}
        assert kinds == {"disk", "domain"}

        # the old host comes back: its copy is removed there, never started
        hostbed.start(bed, hostbed.host(bed, src))
        back = libvirt.open(hostbed.host(bed, src).libvirt_uri)
        try:
            stack.ensure_component(bed, component(hosts, src))
            deadline = time.monotonic() + 120
            while sid in domains_of(back) or old_dir.exists():
                assert time.monotonic() < deadline, "the evacuated copy was not removed"
                dom = _find(back, sid)
                assert dom is None or not dom.isActive(), "the old copy was started"
                time.sleep(0.5)
        finally:
            back.close()
        assert starts_logged(bed, src, sid) == started_before
        # the host's step removed the copy; the control step after it closes the row
        deadline = time.monotonic() + 60
        while migration_of(bed, sid).status != "completed":
            assert time.monotonic() < deadline, migration_of(bed, sid)
            time.sleep(0.5)
        with db_session(bed) as s:
            assert s.exec(select(Ledger).where(Ledger.instance_id == sid,
                                               Ledger.host == src)).all() == []
        wait_host_state(api, src, "up", 90)
        assert conn(dst).lookupByUUIDString(sid).isActive()  # the live one is untouched
    finally:
        _restore(api, bed, hosts, src)
        for server_id in [sid, *others]:
            assert delete_server(api, server_id)["status"] == "succeeded"


def _accepted(r: httpx.Response) -> str:
    assert r.status_code == 202, r.text
    op_id: str = r.json()["operation"]["id"]
    return op_id


def _find(c: libvirt.virConnect, sid: str) -> libvirt.virDomain | None:
    try:
        return c.lookupByUUIDString(sid)
    except libvirt.libvirtError:
        return None


def _restore(api: httpx.Client, bed: Settings, hosts: list[str], src: str) -> None:
    """Both hosts up and enabled again, for the tests that share the bed."""
    hostbed.start(bed, hostbed.host(bed, src))
    stack.ensure_component(bed, component(hosts, src))
    for h in hosts:
        api.put(f"/v1/hosts/{h}", json={"status": "enabled", "forced_down": False})
    wait_hosts_up(api, hosts)

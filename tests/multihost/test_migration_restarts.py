"""A live migration while the stack's services die under it: the Temporal dev server
(its database file persists) or the source host's libvirtd killed dead mid-copy, then
restarted as `make up` does. The operation ends (moved or compensated), the guest runs
exactly once, where the API says it is, and the other host keeps nothing of it."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from contextlib import suppress

import httpx
import libvirt
import pytest

from tests.integration.conftest import action, delete_server, wait_operation
from tests.multihost.conftest import domains_of, launch
from tests.multihost.test_live_migrate import other, running_migration, slow_down, uptime
from vmflow import hostbed, stack
from vmflow.settings import Settings

pytestmark = pytest.mark.guest
Conn = Callable[[str], libvirt.virConnect]


def kill(bed: Settings, what: str, host: str) -> None:
    if what == "temporal":
        assert stack.kill_component(bed, "temporal") is not None
        return
    pid = hostbed.host(bed, host).pid("libvirtd")
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.05)


def running_on(conn: Conn, hosts: list[str], sid: str) -> list[str]:
    found = []
    for h in hosts:
        try:
            if conn(h).lookupByUUIDString(sid).state()[0] == libvirt.VIR_DOMAIN_RUNNING:
                found.append(h)
        except libvirt.libvirtError:
            continue
    return found


@pytest.mark.parametrize("what", ["temporal", "libvirtd"])
def test_live_migration_survives_a_restart(what: str, api: httpx.Client, bed: Settings,
                                           hosts: list[str], conn: Conn) -> None:
    server = launch(api, f"lm-restart-{what}")
    sid, src = server["id"], server["host"]
    dest = other(hosts, src)
    try:
        dom = conn(src).lookupByUUIDString(sid)
        before = uptime(dom)
        slow_down(dom)
        r = action(api, sid, {"os-migrateLive": {"host": dest}})
        assert r.status_code == 202, r.text
        running_migration(api, sid)
        kill(bed, what, src)
        stack.up(bed)  # `make up`: what died starts again
        # the throttle lifted, should the migration still run: it converges (after a
        # libvirtd restart there is no job left to speed up)
        with suppress(libvirt.libvirtError):
            conn(src).lookupByUUIDString(sid).migrateSetMaxSpeed(100_000, 0)
        op = wait_operation(api, r.json()["operation"]["id"], timeout=400)
        assert op["status"] in ("succeeded", "compensated"), op
        shown = api.get(f"/v1/servers/{sid}").json()
        expected = dest if op["status"] == "succeeded" else src
        assert (shown["host"], shown["status"], shown["task_state"]) == (
            expected, "ACTIVE", None), shown
        assert running_on(conn, hosts, sid) == [expected]  # once, where the API says
        assert sid not in domains_of(conn(other(hosts, expected)))
        assert not (bed.host_dir(other(hosts, expected)) / "instances" / sid).exists()
        assert uptime(conn(expected).lookupByUUIDString(sid)) > before  # never rebooted
    finally:
        stack.up(bed)
        delete_server(api, sid)

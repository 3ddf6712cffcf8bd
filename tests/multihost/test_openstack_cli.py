"""The unmodified `openstack` client moving a server between the bed's two hosts:
`server migrate --wait` (cold, to VERIFY_RESIZE), `server resize confirm`, and
`server migrate --live-migration --wait`, each checked on the hosts' libvirt."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import libvirt
import pytest

from tests.integration.conftest import delete_server
from tests.integration.test_openstack_cli import Osc, wait_status
from tests.multihost.conftest import domains_of, launch
from vmflow.settings import Settings

pytestmark = pytest.mark.guest

Conn = Callable[[str], libvirt.virConnect]


def test_migrate_confirm_and_live_migrate(api: httpx.Client, bed: Settings, hosts: list[str],
                                          conn: Conn) -> None:
    osc = Osc(bed.home / "clouds.yaml", "vmflow")
    assert {h["Hypervisor Hostname"] for h in osc.json("hypervisor", "list")} >= set(hosts)
    server = launch(api, "osc-move")
    sid, src = server["id"], server["host"]
    dest = next(h for h in hosts if h != src)
    try:
        osc.run("server", "migrate", "--wait", sid)
        wait_status(api, sid, "VERIFY_RESIZE")
        assert api.get(f"/v1/servers/{sid}").json()["host"] == dest
        osc.run("server", "resize", "confirm", sid)
        wait_status(api, sid, "ACTIVE")
        assert sid not in domains_of(conn(src))
        osc.run("server", "migrate", "--live-migration", "--wait", sid)
        wait_status(api, sid, "ACTIVE")
        assert api.get(f"/v1/servers/{sid}").json()["host"] == src
        back = conn(src).lookupByUUIDString(sid)
        assert back.state()[0] == libvirt.VIR_DOMAIN_RUNNING
        assert sid not in domains_of(conn(dest))
        moves = {(m["Source Compute"], m["Dest Compute"])
                 for m in osc.json("server", "migration", "list", "--server", sid)}
        assert {(src, dest), (dest, src)} <= moves, moves
    finally:
        delete_server(api, sid)

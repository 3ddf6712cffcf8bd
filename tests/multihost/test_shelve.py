"""Shelve and unshelve across hosts on the two-host bed, through the API: a server
shelved (and offloaded: VMFLOW_SHELVED_OFFLOAD_TIME=0) leaves nothing on its host; an
admin unshelves it onto the other host, where it runs with its data; the shelve image
goes once it runs."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import libvirt
import pytest

from tests.integration import guest
from tests.integration.conftest import act, delete_server
from tests.multihost.conftest import domains_of, launch
from vmflow.settings import Settings

pytestmark = pytest.mark.guest
MARKER = "/shelve-marker.txt"


def test_offloaded_server_unshelves_onto_the_other_host_with_its_data(
        api: httpx.Client, bed: Settings, hosts: list[str],
        conn: Callable[[str], libvirt.virConnect]) -> None:
    server = launch(api, "sh-a")
    sid, src = server["id"], server["host"]
    (dst,) = set(hosts) - {src}
    try:
        assert guest.sh(sid, f"echo kept > {MARKER} && sync")[0] == 0

        assert act(api, sid, {"shelve": None})["status"] == "succeeded"
        shelved = api.get(f"/v1/servers/{sid}").json()
        assert (shelved["status"], shelved["host"]) == ("SHELVED_OFFLOADED", None)
        assert sid not in domains_of(conn(src))
        assert not (bed.host_dir(src) / "instances" / sid).exists()
        images = [i for i in api.get("/v1/images").json()["images"]
                  if i["name"] == "sh-a-shelved"]
        assert len(images) == 1

        op = act(api, sid, {"unshelve": {"host": dst}})
        assert op["status"] == "succeeded", op
        after = api.get(f"/v1/servers/{sid}").json()
        assert (after["status"], after["host"]) == ("ACTIVE", dst)
        assert conn(dst).lookupByUUIDString(sid).isActive()
        assert sid not in domains_of(conn(src))
        assert guest.sh(sid, f"cat {MARKER}") == (0, "kept\n")
        assert api.get(f"/v1/images/{images[0]['id']}").status_code == 404
    finally:
        assert delete_server(api, sid)["status"] == "succeeded"

"""The two-host bed itself: two hosts, each its own libvirtd (own host_uuid, own
namespace, own instance directory), reachable by an operator at the URI the API shows,
joined by an underlay; guests land on either; `down` leaves nothing behind."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import libvirt
import pytest

from tests.integration.conftest import delete_server
from tests.multihost.conftest import domains_of, launch
from vmflow import hostbed
from vmflow.settings import Settings

pytestmark = pytest.mark.guest


def test_each_host_is_its_own_libvirt(api: httpx.Client, bed: Settings, hosts: list[str],
                                      conn: Callable[[str], libvirt.virConnect]) -> None:
    shown = {h["name"]: h for h in api.get("/v1/hosts").json()["hosts"]}
    assert set(hosts) <= set(shown)
    uuids = set()
    for i, name in enumerate(hosts, start=1):
        h = shown[name]
        assert h["state"] == "up" and h["status"] == "enabled"
        assert h["libvirt_uri"] == hostbed.host(bed, name).libvirt_uri
        assert (h["migration_address"], h["migration_uri"]) == (
            f"10.77.0.{i}", f"qemu+tcp://10.77.0.{i}/system")
        # an operator reaches it with `virsh -c <libvirt_uri>` from the machine itself
        out = subprocess.run(["virsh", "-c", h["libvirt_uri"], "capabilities"],
                             capture_output=True, text=True, check=True).stdout
        uuids.add(out.split("<uuid>")[1].split("</uuid>")[0])
    assert len(uuids) == len(hosts)  # libvirt tells the hosts apart (migration needs it)

    # the underlay: each host's libvirtd answers the other over it, and only there
    a, b = (hostbed.host(bed, n) for n in hosts)
    peer = subprocess.run(["ip", "netns", "exec", a.netns, "virsh", "-c", b.migration_uri,
                           "hostname"], capture_output=True, text=True, timeout=30)
    assert peer.returncode == 0, peer.stderr
    outside = subprocess.run(["virsh", "-c", b.migration_uri, "hostname"],
                             capture_output=True, text=True, timeout=30)
    assert outside.returncode != 0  # the machine's own namespace has no route there


def test_guests_land_on_both_hosts(api: httpx.Client, hosts: list[str],
                                   conn: Callable[[str], libvirt.virConnect]) -> None:
    # the weigher prefers the host with the most free RAM: the second goes elsewhere
    first = launch(api, "bed-a")["id"]
    second = launch(api, "bed-b")["id"]
    try:
        placed = {api.get(f"/v1/servers/{sid}").json()["host"]: sid for sid in (first, second)}
        assert set(placed) == set(hosts)
        for host, sid in placed.items():
            (other,) = set(hosts) - {host}
            assert sid in domains_of(conn(host)) and sid not in domains_of(conn(other))
            assert conn(host).lookupByUUIDString(sid).isActive()
    finally:
        for sid in (first, second):
            assert delete_server(api, sid)["status"] == "succeeded"


def test_stop_leaves_nothing_behind(tmp_path: Path) -> None:
    """A bed of its own (no stack): hosts up, then down, and nothing of them remains."""
    s = Settings(home=tmp_path, host="mhstop", hosts=2)
    try:
        for h in hostbed.bed(s):
            hostbed.start(s, h)
        pids = [h.pid(d) for h in hostbed.bed(s) for d in ("libvirtd", "virtlogd")]
        assert all(pids) and len(set(pids)) == 4
        netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert {*(h.netns for h in hostbed.bed(s)), hostbed.switch_netns(s)} <= {
            line.split()[0] for line in netns.splitlines()}
    finally:
        hostbed.stop_all(s)
    assert all(not Path(f"/proc/{pid}").exists() for pid in pids)
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "mhstop" not in netns

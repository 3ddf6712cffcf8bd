"""A guest mounts its share (issue 12, item 6): a server launched on a network made
through the API, a share with an ip rule for the server's fixed address; inside the
guest, NFSv4 to the export location: a file written there is on the share's subvolume,
writing past the share's size fails, and a deny cuts the guest off (its mount errors, a
new mount is refused). ganesha sees the guest's own address: no NAT on the way, and
its replies go back through the guest's host (vmflow.storage_netns reply routes)."""

from __future__ import annotations

import subprocess
from typing import Any

import httpx
import pytest

from tests.integration import guest
from tests.integration.conftest import delete_server, wait_operation
from tests.integration.test_shares import (
    GONE,
    allow,
    backend_remains,
    create_share,
    share_action,
    wait_rules,
)
from tests.multihost.test_guest_network import wait_bound
from tests.multihost.test_server_networks import launch_on, ports_of
from vmflow import hostbed, storage_netns
from vmflow.settings import Settings

pytestmark = pytest.mark.guest

NET_NAME, CIDR = "mh-share", "10.96.0.0/24"
MNT = "/mnt/share"
# soft: a server that stops answering gives errors, not a hung guest; retry=0: a
# refused mount fails at once instead of retrying for two minutes
OPTS = "vers=4.1,soft,timeo=30,retrans=2,retry=0"
REFUSED = "reason given by server"  # mount.nfs4's words for an answer, not a timeout
FILL = 960 << 20  # put on the 1 GiB share from the storage side: the guest's write overflows


def mount(sid: str, location: str) -> tuple[int, str]:
    return guest.sh(sid, f"mkdir -p {MNT} && mount.nfs4 {location} {MNT} -o {OPTS} 2>&1",
                    timeout=120)


def test_guest_mounts_its_share_and_deny_cuts_it_off(
        api: httpx.Client, bed: Settings, network: dict[str, Any]) -> None:
    sid, share_id = "", ""
    try:
        sid, op = launch_on(api, "share-client", network["id"])
        assert wait_operation(api, op)["status"] == "succeeded"
        (entry,) = api.get(f"/v1/servers/{sid}").json()["addresses"][NET_NAME]
        ip = entry["addr"]
        wait_bound(sid, "eth0", ip, timeout=90)

        share_id, op = create_share(api, "guest-share", 1)
        assert wait_operation(api, op)["status"] == "succeeded"
        (location,) = api.get(f"/v1/shares/{share_id}").json()["export_locations"]
        assert location.split(":", 1)[0] == storage_netns.ADDRESS == bed.nfs_address
        rc, out = mount(sid, location)  # exported, but no rule for the guest yet
        assert rc != 0 and REFUSED in out, out  # the server answers, and says no

        rule = allow(api, share_id, ip, "rw")
        assert {r["state"] for r in wait_rules(api, share_id)} == {"active"}
        rc, out = mount(sid, location)
        assert rc == 0, out
        rc, out = guest.sh(sid, f"echo from {ip} > {MNT}/hello.txt && sync && "
                                f"cat {MNT}/hello.txt 2>&1", timeout=60)
        assert (rc, out) == (0, f"from {ip}\n")
        subvolume = bed.storage_dir / "pool" / "shares" / share_id
        assert (subvolume / "hello.txt").read_text() == f"from {ip}\n"
        # the guest's connection, as the storage side tracks it: from its own address,
        # its replies marked for the host it runs on
        host = hostbed.host(bed, api.get(f"/v1/servers/{sid}").json()["host"])
        tracked = subprocess.run(
            ["ip", "netns", "exec", storage_netns.name(bed), "conntrack", "-L", "-p", "tcp",
             "--orig-src", ip, "--orig-port-dst", "2049"],
            capture_output=True, text=True, check=True).stdout
        assert f" mark={host.index} " in tracked, tracked

        # past the size: the share holds FILL already, the guest's 128 MiB do not fit
        subprocess.run(["fallocate", "-l", str(FILL), str(subvolume / "fill")], check=True)
        subprocess.run(["sync", "-f", str(subvolume)], check=True)
        rc, out = guest.sh(sid, f"dd if=/dev/zero of={MNT}/big bs=1M count=128 conv=fsync "
                                "2>&1", timeout=240)
        assert rc != 0 and ("quota" in out or "space" in out), (rc, out)

        r = share_action(api, share_id, {"deny_access": {"access_id": rule}})
        assert r.status_code in (200, 202), r.text
        assert wait_rules(api, share_id) == []
        rc, out = guest.sh(sid, f"{{ echo after > {MNT}/after.txt; }} 2>&1", timeout=120)
        assert rc != 0 and "Permission denied" in out, out
        assert not (subvolume / "after.txt").exists()
        guest.sh(sid, f"umount -f -l {MNT}", timeout=60)
        rc, out = mount(sid, location)
        assert rc != 0 and REFUSED in out, out

        r = api.delete(f"/v1/shares/{share_id}")
        assert r.status_code == 202, r.text
        assert wait_operation(api, r.json()["operation"]["id"])["status"] == "succeeded"
        assert backend_remains(bed, share_id) == GONE
        share_id = ""
        assert delete_server(api, sid)["status"] == "succeeded"
        assert ports_of(api, sid) == []
        sid = ""
    finally:
        if sid and api.get(f"/v1/servers/{sid}").status_code == 200:
            delete_server(api, sid)
        if share_id and api.get(f"/v1/shares/{share_id}").status_code == 200:
            api.delete(f"/v1/shares/{share_id}")

"""Resize and cold migration between the bed's two hosts, through the API: the guest's
data survives the copy (the source serves its files over NBD on its underlay address,
the destination pulls them inside its own namespace), the source keeps its copy shut
off until confirm or revert, and kill -9 of the destination's worker in the middle of
the copy ends the operation compensated: the source runs again with its data, the
destination has nothing left."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import libvirt
import pytest
from sqlmodel import col, select

from tests.conftest import db_session
from tests.integration import guest
from tests.integration.conftest import act, action, delete_server, wait_operation
from tests.multihost.conftest import domains_of, launch
from vmflow import hostbed, stack
from vmflow.models import Allocation, Migration
from vmflow.settings import Settings

pytestmark = pytest.mark.guest
BIG = "mh.resized"  # bigger than t1.micro in vCPUs, RAM and disk


@pytest.fixture(scope="module")
def big_flavor(api: httpx.Client) -> Iterator[str]:
    r = api.post("/v1/flavors", json={"name": BIG, "vcpus": 2, "ram": 384, "disk": 2})
    assert r.status_code == 201, r.text
    yield BIG


def flavor_id(api: httpx.Client, name: str) -> str:
    return str(api.get(f"/v1/flavors/{name}").json()["id"])


def sh(bed: Settings, host: str, sid: str, script: str, timeout: float = 30
       ) -> tuple[int, str]:
    """A shell command in the guest, through the agent on the host it runs on."""
    dom = guest.domain(sid)
    assert dom.isActive() and dom.UUIDString() in {
        d.UUIDString() for d in libvirt.open(hostbed.host(bed, host).libvirt_uri)
        .listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)}, f"{sid} not running on {host}"
    return guest.sh(sid, script, timeout)


def write(bed: Settings, host: str, sid: str, name: str) -> str:
    token = uuid.uuid4().hex
    assert sh(bed, host, sid, f"echo {token} > /{name} && sync")[0] == 0
    return token


def read(bed: Settings, host: str, sid: str, name: str) -> str | None:
    code, out = sh(bed, host, sid, f"cat /{name}")
    return out.strip() if code == 0 else None


def server(api: httpx.Client, sid: str) -> dict[str, Any]:
    body: dict[str, Any] = api.get(f"/v1/servers/{sid}").json()
    return body


def moves(bed: Settings, sid: str) -> list[Migration]:
    with db_session(bed) as s:
        return list(s.exec(select(Migration).where(Migration.instance_id == sid)
                           .order_by(col(Migration.id))))


def claims(bed: Settings, sid: str) -> list[tuple[bool, str, int]]:
    """(held by the instance itself, host, vCPUs) of every claim of the server or its moves."""
    ids = {sid, *(m.uuid for m in moves(bed, sid))}
    with db_session(bed) as s:
        return sorted((a.instance_id == sid, a.host, a.vcpus) for a in s.exec(
            select(Allocation).where(col(Allocation.instance_id).in_(ids))))


def instance_dir(bed: Settings, host: str, sid: str, aside: bool = False) -> bool:
    d = bed.host_dir(host) / "instances" / (f"{sid}_resize" if aside else sid)
    return d.exists()


def power(conn: libvirt.virConnect, sid: str) -> tuple[bool, int]:
    state, _max, _mem, vcpus, _cpu = conn.lookupByUUIDString(sid).info()
    return state == libvirt.VIR_DOMAIN_RUNNING, vcpus


def test_resize_to_the_other_host_keeps_the_data_and_confirm_drops_the_source(
        api: httpx.Client, bed: Settings, hosts: list[str], big_flavor: str,
        conn: Callable[[str], libvirt.virConnect]) -> None:
    srv = launch(api, "mh-resize")
    sid, src = srv["id"], srv["host"]
    (dst,) = set(hosts) - {src}
    token = write(bed, src, sid, "before.txt")
    op = act(api, sid, {"resize": {"flavorRef": big_flavor}})
    assert op["status"] == "succeeded", op["last_error"]
    after = server(api, sid)
    assert (after["status"], after["host"], after["flavor_id"]) == (
        "VERIFY_RESIZE", dst, flavor_id(api, big_flavor))
    assert power(conn(dst), sid) == (True, 2) and power(conn(src), sid) == (False, 1)
    assert instance_dir(bed, src, sid, aside=True) and instance_dir(bed, dst, sid)
    (mig,) = moves(bed, sid)
    assert (mig.migration_type, mig.status, mig.source_host, mig.dest_host) == (
        "resize", "finished", src, dst)
    assert mig.disk_total and mig.disk_processed == mig.disk_total
    assert claims(bed, sid) == sorted([(True, dst, 2), (False, src, 1)])
    assert read(bed, dst, sid, "before.txt") == token

    assert act(api, sid, {"confirmResize": None})["status"] == "succeeded"
    assert server(api, sid)["status"] == "ACTIVE"
    assert sid not in domains_of(conn(src)) and not instance_dir(bed, src, sid, aside=True)
    assert claims(bed, sid) == [(True, dst, 2)] and moves(bed, sid)[0].status == "confirmed"
    assert read(bed, dst, sid, "before.txt") == token
    assert delete_server(api, sid)["status"] == "succeeded"
    assert sid not in domains_of(conn(dst)) | domains_of(conn(src))


def test_cold_migrate_and_revert(api: httpx.Client, bed: Settings, hosts: list[str],
                                 conn: Callable[[str], libvirt.virConnect]) -> None:
    srv = launch(api, "mh-migrate")
    sid, src = srv["id"], srv["host"]
    (dst,) = set(hosts) - {src}
    token = write(bed, src, sid, "before.txt")
    op = act(api, sid, {"migrate": {"host": dst}})
    assert op["status"] == "succeeded", op["last_error"]
    assert (server(api, sid)["status"], server(api, sid)["host"]) == ("VERIFY_RESIZE", dst)
    assert read(bed, dst, sid, "before.txt") == token
    write(bed, dst, sid, "after.txt")  # only on the destination's copy

    assert act(api, sid, {"revertResize": None})["status"] == "succeeded"
    back = server(api, sid)
    assert (back["status"], back["host"], back["flavor_id"]) == (
        "ACTIVE", src, flavor_id(api, "t1.micro"))
    assert sid not in domains_of(conn(dst)) and not instance_dir(bed, dst, sid)
    assert power(conn(src), sid) == (True, 1) and not instance_dir(bed, src, sid, aside=True)
    assert read(bed, src, sid, "before.txt") == token
    assert read(bed, src, sid, "after.txt") is None
    assert claims(bed, sid) == [(True, src, 1)]
    assert [(m.migration_type, m.status) for m in moves(bed, sid)] == [("migration",
                                                                        "reverted")]
    assert delete_server(api, sid)["status"] == "succeeded"


def start_cold_copy(api: httpx.Client, bed: Settings, sid: str, src: str, dst: str,
                    mib: int) -> str:
    """A cold migration to dst caught while the destination pulls the disk; the
    operation id. For the copy to take a while the guest first writes `mib` MiB to its
    disk past the end of its file system (zeros written are data to copy like any other)."""
    fs_kib = int(sh(bed, src, sid, "df -k / | tail -1")[1].split()[1])
    assert fs_kib < 512 * 1024
    code, out = sh(bed, src, sid, f"dd if=/dev/zero of=/dev/vda bs=1M seek=512 count={mib} "
                                  "conv=fsync 2>&1", timeout=120)
    assert code == 0, out
    r = action(api, sid, {"migrate": {"host": dst}})
    assert r.status_code == 202, r.text
    part = bed.host_dir(dst) / "instances" / sid / "disk.part"
    deadline = time.monotonic() + 180
    while not part.exists():  # the destination is pulling
        assert time.monotonic() < deadline, "the destination never began the copy"
        time.sleep(0.01)
    return str(r.json()["operation"]["id"])


def test_kill_9_of_the_destination_worker_mid_copy_compensates(
        api: httpx.Client, bed: Settings, hosts: list[str],
        conn: Callable[[str], libvirt.virConnect]) -> None:
    srv = launch(api, "mh-crash")
    sid, src = srv["id"], srv["host"]
    (dst,) = set(hosts) - {src}
    token = write(bed, src, sid, "before.txt")
    op_id = start_cold_copy(api, bed, sid, src, dst, mib=400)
    stack.kill_component(bed, stack.hypervisor_component(bed, dst))
    stack.up(bed)  # `make up`: restarts what died

    op = wait_operation(api, op_id, timeout=300)
    assert op["status"] == "compensated", op
    back = server(api, sid)
    assert (back["status"], back["host"], back["task_state"]) == ("ACTIVE", src, None)
    assert power(conn(src), sid) == (True, 1)
    assert sid not in domains_of(conn(dst)) and not instance_dir(bed, dst, sid)
    assert not instance_dir(bed, src, sid, aside=True)
    assert claims(bed, sid) == [(True, src, 1)] and moves(bed, sid)[-1].status == "error"
    deadline = time.monotonic() + 120  # the source's guest boots again
    while True:
        try:
            assert read(bed, src, sid, "before.txt") == token
            break
        except libvirt.libvirtError:
            assert time.monotonic() < deadline
            time.sleep(1)
    assert delete_server(api, sid)["status"] == "succeeded"

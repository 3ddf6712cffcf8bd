"""Live migration on the two-host bed, through the API: the guest keeps its data and
its uptime keeps growing; an abort leaves it on the source; a destination whose worker
is killed mid-migration gets the migration aborted and compensated, and is left clean."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import libvirt
import libvirt_qemu
import pytest

from tests.integration.conftest import action, delete_server, wait_operation
from tests.multihost.conftest import domains_of, launch
from vmflow import stack
from vmflow.settings import Settings

pytestmark = pytest.mark.guest
Conn = Callable[[str], libvirt.virConnect]


def slow_down(dom: libvirt.virDomain) -> None:
    """The guest's next migration runs at 1 MiB/s (libvirt keeps a speed set while no
    job runs for the next one): minutes instead of seconds, so it can be caught."""
    dom.migrateSetMaxSpeed(1, 0)


def sh(dom: libvirt.virDomain, script: str, timeout: float = 30) -> str:
    def agent(cmd: str, args: dict[str, Any]) -> Any:
        out = libvirt_qemu.qemuAgentCommand(dom, json.dumps({"execute": cmd,
                                                             "arguments": args}), 10, 0)
        return json.loads(out)["return"]

    pid = agent("guest-exec", {"path": "/bin/sh", "arg": ["-c", script],
                               "capture-output": True})["pid"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = agent("guest-exec-status", {"pid": pid})
        if st.get("exited"):
            assert st.get("exitcode") == 0, st
            return base64.b64decode(st.get("out-data", "")).decode()
        time.sleep(0.1)
    raise TimeoutError(script)


def uptime(dom: libvirt.virDomain) -> float:
    return float(sh(dom, "cut -d' ' -f1 /proc/uptime").strip())


def other(hosts: list[str], host: str) -> str:
    (dest,) = set(hosts) - {host}
    return dest


def running_migration(api: httpx.Client, sid: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shown = api.get(f"/v1/servers/{sid}/migrations").json()["migrations"]
        if shown and shown[0]["status"] == "running":
            return dict(shown[0])
        time.sleep(0.5)
    raise AssertionError(f"no running migration of {sid} after {timeout}s")


def start_slow_live_migration(api: httpx.Client, conn: Conn, sid: str, src: str,
                              dest: str) -> tuple[libvirt.virDomain, float, str, dict[str, Any]]:
    """The guest throttled and its live migration to dest caught running: its domain on
    the source, its uptime before, the operation id and the migration row."""
    dom = conn(src).lookupByUUIDString(sid)
    before = uptime(dom)
    slow_down(dom)
    r = action(api, sid, {"os-migrateLive": {"host": dest}})
    assert r.status_code == 202, r.text
    return dom, before, r.json()["operation"]["id"], running_migration(api, sid)


def assert_clean(bed: Settings, conn: Conn, host: str, sid: str) -> None:
    assert sid not in domains_of(conn(host))
    assert not (bed.host_dir(host) / "instances" / sid).exists()


def test_live_migration_keeps_data_and_uptime(api: httpx.Client, bed: Settings,
                                              hosts: list[str], conn: Conn) -> None:
    server = launch(api, "lm-data")
    sid, src = server["id"], server["host"]
    dest = other(hosts, src)
    try:
        dom = conn(src).lookupByUUIDString(sid)
        sh(dom, "echo kept-across-hosts > /lm-marker; sync")
        before = uptime(dom)
        r = action(api, sid, {"os-migrateLive": {"host": None, "block_migration": "auto"}})
        assert r.status_code == 202, r.text
        op = wait_operation(api, r.json()["operation"]["id"], timeout=300)
        assert op["status"] == "succeeded", op["last_error"]
        shown = api.get(f"/v1/servers/{sid}").json()
        assert (shown["host"], shown["status"]) == (dest, "ACTIVE")
        moved = conn(dest).lookupByUUIDString(sid)
        assert moved.isPersistent() and moved.state()[0] == libvirt.VIR_DOMAIN_RUNNING
        assert sh(moved, "cat /lm-marker").strip() == "kept-across-hosts"
        assert uptime(moved) > before  # the same boot: it never stopped
        assert_clean(bed, conn, src, sid)
        (mig,) = [m for m in api.get("/v1/os-migrations", params={"instance_uuid": sid})
                  .json()["migrations"]]
        assert (mig["status"], mig["source_compute"], mig["dest_compute"],
                mig["progress"]) == ("completed", src, dest, 100)
        assert mig["memory_total_bytes"] and mig["disk_total_bytes"] is not None
        usage = {h["name"]: h["instances"] for h in api.get("/v1/hosts").json()["hosts"]}
        assert usage[src] == 0 and usage[dest] >= 1
    finally:
        delete_server(api, sid)


def test_abort_leaves_the_guest_on_the_source(api: httpx.Client, bed: Settings,
                                              hosts: list[str], conn: Conn) -> None:
    server = launch(api, "lm-abort")
    sid, src = server["id"], server["host"]
    dest = other(hosts, src)
    try:
        dom, before, op_id, mig = start_slow_live_migration(api, conn, sid, src, dest)
        # progress comes from the job's heartbeats (Temporal keeps one every few seconds)
        for _ in range(60):
            shown = api.get(f"/v1/servers/{sid}/migrations/{mig['id']}").json()
            if shown.get("memory_processed_bytes"):
                break
            time.sleep(0.5)
        assert shown["memory_total_bytes"] and shown["memory_processed_bytes"], shown
        assert api.get(f"/v1/operations/{op_id}").json()["progress"] is not None
        assert api.delete(f"/v1/servers/{sid}/migrations/{mig['id']}").status_code == 202
        op = wait_operation(api, op_id, timeout=180)
        assert op["status"] == "compensated", op
        shown = api.get(f"/v1/servers/{sid}").json()
        assert (shown["host"], shown["status"]) == (src, "ACTIVE")
        assert uptime(conn(src).lookupByUUIDString(sid)) > before
        assert_clean(bed, conn, dest, sid)
        (row,) = api.get("/v1/os-migrations", params={"instance_uuid": sid}).json()["migrations"]
        assert row["status"] == "cancelled"
    finally:
        delete_server(api, sid)


def test_destination_worker_killed_mid_migration(api: httpx.Client, bed: Settings,
                                                 hosts: list[str], conn: Conn) -> None:
    server = launch(api, "lm-kill")
    sid, src = server["id"], server["host"]
    dest = other(hosts, src)
    worker = stack.hypervisor_component(bed, dest)
    try:
        dom = conn(src).lookupByUUIDString(sid)
        slow_down(dom)
        r = action(api, sid, {"os-migrateLive": {"host": dest}})
        assert r.status_code == 202, r.text
        running_migration(api, sid)
        assert stack.kill_component(bed, worker) is not None
        time.sleep(20)  # past the destination watch's heartbeat timeout: the source aborts
        stack.ensure_component(bed, worker)  # its undo runs on the destination's worker
        op = wait_operation(api, r.json()["operation"]["id"], timeout=300)
        assert op["status"] == "compensated", op
        assert "destination" in (op["last_error"] or ""), op
        shown = api.get(f"/v1/servers/{sid}").json()
        assert (shown["host"], shown["status"]) == (src, "ACTIVE")
        assert conn(src).lookupByUUIDString(sid).state()[0] == libvirt.VIR_DOMAIN_RUNNING
        assert_clean(bed, conn, dest, sid)
    finally:
        stack.ensure_component(bed, worker)
        delete_server(api, sid)


def test_force_complete_pauses_the_guest_until_it_arrives(api: httpx.Client, bed: Settings,
                                                         hosts: list[str], conn: Conn) -> None:
    server = launch(api, "lm-force")
    sid, src = server["id"], server["host"]
    dest = other(hosts, src)
    try:
        dom = conn(src).lookupByUUIDString(sid)
        sh(dom, "echo forced > /lm-marker; sync")
        slow_down(dom)
        r = action(api, sid, {"os-migrateLive": {"host": dest}})
        assert r.status_code == 202, r.text
        mig = running_migration(api, sid)
        forced = api.post(f"/v1/servers/{sid}/migrations/{mig['id']}/action",
                          json={"force_complete": None})
        assert forced.status_code == 202, forced.text
        # the source pauses the guest so its memory stops changing (Nova without post-copy)
        deadline = time.monotonic() + 60
        while dom.state()[0] != libvirt.VIR_DOMAIN_PAUSED:
            assert time.monotonic() < deadline, "force_complete did not pause the guest"
            time.sleep(0.2)
        dom.migrateSetMaxSpeed(100_000, 0)  # the test's own throttle lifted: it converges
        op = wait_operation(api, r.json()["operation"]["id"], timeout=300)
        assert op["status"] == "succeeded", op
        shown = api.get(f"/v1/servers/{sid}").json()
        assert (shown["host"], shown["status"]) == (dest, "ACTIVE")
        moved = conn(dest).lookupByUUIDString(sid)
        assert moved.state()[0] == libvirt.VIR_DOMAIN_RUNNING  # unpaused where it arrived
        assert sh(moved, "cat /lm-marker").strip() == "forced"
        assert_clean(bed, conn, src, sid)
    finally:
        delete_server(api, sid)

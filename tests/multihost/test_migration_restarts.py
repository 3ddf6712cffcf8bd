"""Migrations while the stack's services die under them: the Temporal dev server (its
database file persists) or the source host's libvirtd killed dead mid-copy of a live
migration, then restarted as `make up` does; PostgreSQL (the bed's database) killed -9
mid live migration and mid cold migration's copy, started again seconds later. The
operation ends (moved or compensated), the guest runs exactly once, where the API says
it is, the other host keeps nothing of it, and no migration row is left unfinished."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from contextlib import suppress
from typing import Any

import httpx
import libvirt
import pytest
from temporalio.client import Client

from tests.integration.conftest import act, delete_server, wait_operation
from tests.multihost.conftest import domains_of, launch
from tests.multihost.test_live_migrate import other, start_slow_live_migration, uptime
from tests.multihost.test_resize import (
    claims,
    instance_dir,
    moves,
    read,
    server,
    start_cold_copy,
    write,
)
from tests.postgres import Postgres, crash, ensure_running
from vmflow import hostbed, stack
from vmflow.contracts import resize as cold
from vmflow.contracts.migrations import LiveStatus
from vmflow.names import CONTROL_QUEUE
from vmflow.settings import Settings

pytestmark = pytest.mark.guest
Conn = Callable[[str], libvirt.virConnect]
DB_DOWN_S = 8.0  # long enough for the steps that come due to fail against it and retry
FINAL = {LiveStatus.COMPLETED, LiveStatus.FAILED, LiveStatus.CANCELLED, LiveStatus.ERROR,
         cold.CONFIRMED, cold.REVERTED, cold.ERROR}


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


def retried_control_steps(bed: Settings, op: dict[str, Any]) -> list[str]:
    """The control steps of the operation's run that needed more than one attempt
    (the history keeps the attempt a step ended with)."""
    async def read() -> list[str]:
        client = await Client.connect(bed.temporal_address, namespace=bed.temporal_namespace)
        history = await client.get_workflow_handle(op["workflow_id"],
                                                   run_id=op["run_id"]).fetch_history()
        scheduled, retried = {}, []
        for e in history.events:
            if e.HasField("activity_task_scheduled_event_attributes"):
                a = e.activity_task_scheduled_event_attributes
                if a.task_queue.name == CONTROL_QUEUE:
                    scheduled[e.event_id] = a.activity_type.name
            elif e.HasField("activity_task_started_event_attributes"):
                b = e.activity_task_started_event_attributes
                if b.attempt > 1 and b.scheduled_event_id in scheduled:
                    retried.append(scheduled[b.scheduled_event_id])
        return retried

    return asyncio.run(read())


def assert_landed_once(api: httpx.Client, bed: Settings, hosts: list[str], conn: Conn,
                       sid: str, op: dict[str, Any], src: str, dest: str,
                       before: float) -> str:
    """A live migration that ended: succeeded on dest or compensated on src, running
    once where the API says, nothing of it on the other host, never rebooted; returns
    the host it runs on."""
    assert op["status"] in ("succeeded", "compensated"), op
    shown = api.get(f"/v1/servers/{sid}").json()
    expected = dest if op["status"] == "succeeded" else src
    assert (shown["host"], shown["status"], shown["task_state"]) == (
        expected, "ACTIVE", None), shown
    assert running_on(conn, hosts, sid) == [expected]  # once, where the API says
    assert sid not in domains_of(conn(other(hosts, expected)))
    assert not (bed.host_dir(other(hosts, expected)) / "instances" / sid).exists()
    assert uptime(conn(expected).lookupByUUIDString(sid)) > before  # never rebooted
    return expected


@pytest.mark.parametrize("what", ["temporal", "libvirtd"])
def test_live_migration_survives_a_restart(what: str, api: httpx.Client, bed: Settings,
                                           hosts: list[str], conn: Conn) -> None:
    server = launch(api, f"lm-restart-{what}")
    sid, src = server["id"], server["host"]
    dest = other(hosts, src)
    try:
        _, before, op_id, _ = start_slow_live_migration(api, conn, sid, src, dest)
        kill(bed, what, src)
        stack.up(bed)  # `make up`: what died starts again
        # the throttle lifted, should the migration still run: it converges (after a
        # libvirtd restart there is no job left to speed up)
        with suppress(libvirt.libvirtError):
            conn(src).lookupByUUIDString(sid).migrateSetMaxSpeed(100_000, 0)
        op = wait_operation(api, op_id, timeout=400)
        assert_landed_once(api, bed, hosts, conn, sid, op, src, dest, before)
        assert {m.status for m in moves(bed, sid)} <= FINAL
    finally:
        stack.up(bed)
        delete_server(api, sid)


def test_live_migration_survives_a_database_crash(api: httpx.Client, bed: Settings,
                                                  hosts: list[str], conn: Conn,
                                                  postgres: Postgres) -> None:
    server = launch(api, "lm-restart-postgres")
    sid, src = server["id"], server["host"]
    dest = other(hosts, src)
    try:
        dom, before, op_id, _ = start_slow_live_migration(api, conn, sid, src, dest)
        crash(postgres)
        # the job converges while the database is down: the steps after it (the move
        # recorded, the source cleaned, the row completed) meet a dead database first
        dom.migrateSetMaxSpeed(100_000, 0)
        deadline = time.monotonic() + 120
        while running_on(conn, hosts, sid) != [dest]:
            assert time.monotonic() < deadline, "the migration did not converge"
            time.sleep(0.2)
        time.sleep(DB_DOWN_S)
        postgres.start()
        op = wait_operation(api, op_id, timeout=400)
        expected = assert_landed_once(api, bed, hosts, conn, sid, op, src, dest, before)
        assert retried_control_steps(bed, op), "no step met the database down"
        assert [m.status for m in moves(bed, sid)] == [
            LiveStatus.COMPLETED if op["status"] == "succeeded" else LiveStatus.FAILED]
        assert claims(bed, sid) == [(True, expected, 1)]  # one claim, where it runs
    finally:
        ensure_running(postgres)
        delete_server(api, sid)


def test_cold_migration_survives_a_database_crash_mid_copy(api: httpx.Client, bed: Settings,
                                                           hosts: list[str], conn: Conn,
                                                           postgres: Postgres) -> None:
    srv = launch(api, "mh-migrate-postgres")
    sid, src = srv["id"], srv["host"]
    dst = other(hosts, src)
    try:
        token = write(bed, src, sid, "before.txt")
        op_id = start_cold_copy(api, bed, sid, src, dst, mib=200)
        crash(postgres)
        time.sleep(DB_DOWN_S)
        postgres.start()
        op = wait_operation(api, op_id, timeout=400)
        assert op["status"] in ("succeeded", "compensated"), op
        assert retried_control_steps(bed, op), "no step met the database down"
        if op["status"] == "succeeded":  # moved: confirmed, the source's copy goes
            assert (server(api, sid)["status"], server(api, sid)["host"]) == (
                "VERIFY_RESIZE", dst)
            assert act(api, sid, {"confirmResize": None})["status"] == "succeeded"
        expected = dst if op["status"] == "succeeded" else src
        shown = server(api, sid)
        assert (shown["host"], shown["status"], shown["task_state"]) == (
            expected, "ACTIVE", None), shown
        deadline = time.monotonic() + 120  # a compensated move boots the source again
        while running_on(conn, hosts, sid) != [expected]:
            assert time.monotonic() < deadline, running_on(conn, hosts, sid)
            time.sleep(1)
        assert sid not in domains_of(conn(other(hosts, expected)))  # one domain
        assert not instance_dir(bed, other(hosts, expected), sid)
        assert not instance_dir(bed, expected, sid, aside=True)
        assert claims(bed, sid) == [(True, expected, 1)]
        assert [m.status for m in moves(bed, sid)] == [
            cold.CONFIRMED if op["status"] == "succeeded" else cold.ERROR]
        deadline = time.monotonic() + 120  # the agent answers once the guest is up
        while True:
            try:
                assert read(bed, expected, sid, "before.txt") == token
                break
            except libvirt.libvirtError:
                assert time.monotonic() < deadline
                time.sleep(1)
    finally:
        ensure_running(postgres)
        delete_server(api, sid)

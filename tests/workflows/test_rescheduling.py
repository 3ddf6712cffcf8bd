"""Rescheduling a launch on the real stack: a chosen host whose worker is registered
and looked alive but no longer runs does not take the step within the
schedule-to-start timeout; the launch gives up its claim there and tries the next
host, up to VMFLOW_SCHEDULE_ATTEMPTS, and otherwise fails NoValidHost naming every
host and why, with nothing left behind."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
from sqlmodel import col, select
from temporalio import workflow
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from tests.workflows.conftest import HostFactory, new_delete_op, new_server, run, session
from tests.workflows.test_launch_delete import CLEAN, instance, leftovers, operation
from vmflow.contracts.control_stub import ControlStub
from vmflow.contracts.instances import ClaimRequest, InstanceHost, ScheduleRequest
from vmflow.host_liveness import fresh, last_seen
from vmflow.models import Allocation, Flavor, Host, Ledger
from vmflow.names import instance_workflow_id
from vmflow.settings import Settings
from workflows._base.placement import place
from workflows._base.steps import control


@asynccontextmanager
async def dead_and_live(
    client: Client, hv_worker: HostFactory
) -> AsyncIterator[tuple[str, Settings, str]]:
    """(dead host, live host's settings, flavor): both hosts have a trait no other host
    has, so hosts of earlier tests (stopped, still fresh) cannot be chosen; the dead one
    polled a moment ago (it looks alive) and has the most free RAM, so it is chosen
    first. Its row is removed at the end, so later tests never choose it."""
    trait = f"CUSTOM_RS_{uuid.uuid4().hex[:8].upper()}"
    async with hv_worker(host_traits=trait) as dead:
        for _ in range(100):  # until its first poll shows: a host that never polled is down
            if fresh(await last_seen(client, dead.host), dead.host_down_after):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"{dead.host} never polled")
    try:
        with session(dead) as db_s:
            row = db_s.get(Host, dead.host)
            assert row is not None
            row.ram_mb = 10**7
            row.status, row.disabled_reason = "enabled", None  # the fixture disabled it
            db_s.add(row)
            db_s.add(Flavor(name=f"rs.{trait}", vcpus=1, ram_mb=256, disk_gb=1,
                            extra_specs={f"trait:{trait}": "required"}))
            db_s.commit()
        async with hv_worker(host_traits=trait) as live:
            yield dead.host, live, f"rs.{trait}"
    finally:
        with session(dead) as db_s:
            db_s.delete(db_s.get(Host, dead.host))
            db_s.commit()


async def hosts_asked(client: Client, instance_id: str) -> list[str]:
    """The host queues the launch sent its first host step to, in order."""
    history = await client.get_workflow_handle(instance_workflow_id(instance_id)).fetch_history()
    scheduled = [e.activity_task_scheduled_event_attributes for e in history.events
                 if e.HasField("activity_task_scheduled_event_attributes")]
    queues = [a.task_queue.name for a in scheduled if a.activity_type.name == "host.fetch_image"]
    return list(dict.fromkeys(queues))


def nothing_on(s: Settings, host: str) -> None:
    with session(s) as db_s:
        assert db_s.exec(select(Allocation).where(Allocation.host == host)).all() == []
        assert db_s.exec(select(Ledger).where(Ledger.host == host,
                                              Ledger.kind == "claim")).all() == []


async def test_one_attempt_and_a_dead_host_fail_no_valid_host_naming_it(
    temporal: WorkflowEnvironment, hv_worker: HostFactory, wf_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(wf_settings, "schedule_attempts", 1)  # the control worker's settings
    async with dead_and_live(temporal.client, hv_worker) as (dead, live, flavor):
        ref = new_server(live, flavor=flavor)
        with pytest.raises(WorkflowFailureError) as failed:
            await run(temporal.client, "LaunchInstance", ref)
        cause = failed.value.cause
        assert isinstance(cause, ApplicationError) and cause.type == "NoValidHost"
        assert cause.non_retryable
        assert await hosts_asked(temporal.client, ref.instance_id) == [f"hv.{dead}"]

        inst = instance(live, ref.instance_id)
        assert inst.vm_state == "error" and inst.task_state is None and inst.host is None
        assert inst.fault and inst.fault.startswith("No valid host was found")
        # the dead host with what happened there, the live one not tried: the bound held
        assert f"{dead}: did not take the step within 2s" in inst.fault
        assert f"{live.host}: not tried: the 1 schedule attempt(s) are used up" in inst.fault
        assert cause.message == inst.fault
        op = operation(live, ref.operation_id)
        assert op.status == "compensated" and op.last_error == inst.fault
        assert leftovers(live, ref.instance_id) == CLEAN
        nothing_on(live, dead)
        nothing_on(live, live.host)


async def test_default_attempts_move_a_launch_from_a_dead_host_to_a_live_one(
    temporal: WorkflowEnvironment, hv_worker: HostFactory, wf_settings: Settings
) -> None:
    assert wf_settings.schedule_attempts == 3
    async with dead_and_live(temporal.client, hv_worker) as (dead, live, flavor):
        ref = new_server(live, flavor=flavor)
        assert await run(temporal.client, "LaunchInstance", ref) == live.host
        assert await hosts_asked(temporal.client, ref.instance_id) == [f"hv.{dead}",
                                                                      f"hv.{live.host}"]
        inst = instance(live, ref.instance_id)
        assert (inst.vm_state, inst.host, inst.fault) == ("active", live.host, None)
        assert operation(live, ref.operation_id).status == "succeeded"
        nothing_on(live, dead)
        await run(temporal.client, "DeleteInstance", new_delete_op(live, ref.instance_id))
        assert leftovers(live, ref.instance_id) == CLEAN


@dataclass(frozen=True)
class Race:
    instance_id: str
    rival_id: str
    trait: str
    rival_ram_mb: int


@workflow.defn(name="TestPlaceWhenARivalTakesTheRoom", sandboxed=False)
class PlaceWhenARivalTakesTheRoom:
    """place() as a launch runs it, except that a rival placement claims the first
    chosen host's whole room between our schedule and our claim: the race 50 launches
    at once run into, made certain with the real schedule and claim activities."""

    @workflow.run
    async def run(self, race: Race) -> str:
        rivals: list[str] = []

        async def attempt(host: str) -> str:
            if not rivals:
                rivals.append(host)
                await control(ControlStub.claim, ClaimRequest(race.rival_id, host, 1,
                                                              race.rival_ram_mb, 1))
            await control(ControlStub.claim, ClaimRequest(race.instance_id, host, 1, 256, 1))
            return host

        async def give_up(host: str) -> None:
            await control(ControlStub.release_claim, InstanceHost(race.instance_id, host))

        request = ScheduleRequest(race.instance_id, 1, 256, 1, [race.trait], [])
        return (await place(request, 3, 2, attempt, give_up))[0]


async def test_a_claim_refused_for_lost_room_reschedules_to_the_next_host(
    temporal: WorkflowEnvironment, hv_worker: HostFactory
) -> None:
    trait = f"CUSTOM_RACE_{uuid.uuid4().hex[:8].upper()}"
    async with hv_worker(host_traits=trait) as first, hv_worker(host_traits=trait) as second:
        with session(first) as db_s:  # `first` is chosen first: the most free RAM
            row = db_s.get(Host, first.host)
            assert row is not None
            row.ram_mb = 10**7
            db_s.add(row)
            db_s.commit()
        race = Race(f"race-{uuid.uuid4().hex[:8]}", f"rival-{uuid.uuid4().hex[:8]}", trait,
                    10**7 - first.reserved_host_ram_mb)
        async with Worker(temporal.client, task_queue=f"race-{race.instance_id}",
                          workflows=[PlaceWhenARivalTakesTheRoom],
                          workflow_runner=UnsandboxedWorkflowRunner()):
            host = await temporal.client.execute_workflow(
                PlaceWhenARivalTakesTheRoom.run, race, id=race.instance_id,
                task_queue=f"race-{race.instance_id}")
        assert host == second.host
        with session(first) as db_s:
            claims = {(a.instance_id, a.host) for a in db_s.exec(select(Allocation).where(
                col(Allocation.instance_id).in_([race.instance_id, race.rival_id])))}
            assert claims == {(race.rival_id, first.host), (race.instance_id, second.host)}
            for a in db_s.exec(select(Allocation).where(
                    col(Allocation.instance_id).in_([race.instance_id, race.rival_id]))):
                db_s.delete(a)
            db_s.commit()

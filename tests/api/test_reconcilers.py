"""The ledger reconciler's admin routes on a real Temporal: admin only, a clear 503
before the control worker made the schedule, then the schedule as the control worker
makes it (interval, overlap SKIP, ReconcileLedger on `control`), a trigger that starts
a run, and that run in the GET (Running: no worker polls here)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
from temporalio.client import (
    Client,
    ScheduleActionStartWorkflow,
    ScheduleOverlapPolicy,
)

from tests.api.conftest import World
from tests.api.test_auth import assert_error
from vmflow import settings
from vmflow.names import CONTROL_QUEUE, LEDGER_RECONCILE_SCHEDULE
from workers import control

PATH = "/v1/admin/reconcile-ledger"


async def test_reconcile_ledger_is_admin_only(api: httpx.AsyncClient, world: World) -> None:
    for who in (world.alice, world.rita):
        assert_error(await api.post(PATH, headers=who.h), 403)
        assert_error(await api.get(PATH, headers=who.h), 403)
    assert_error(await api.post(PATH), 401)


async def test_trigger_runs_the_schedule(api: httpx.AsyncClient, world: World,
                                         temporal: Client) -> None:
    err = assert_error(await api.post(PATH, headers=world.admin.h), 503, "ScheduleMissing")
    assert "control worker" in err["message"]

    await control.ensure_ledger_reconcile_schedule(temporal, settings.get_settings())
    handle = temporal.get_schedule_handle(LEDGER_RECONCILE_SCHEDULE)
    try:
        desc = await handle.describe()
        assert [i.every for i in desc.schedule.spec.intervals] == [
            timedelta(seconds=settings.get_settings().reconcile_interval)]
        assert desc.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
        action = desc.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert (action.workflow, action.id, action.task_queue) == (
            "ReconcileLedger", LEDGER_RECONCILE_SCHEDULE, CONTROL_QUEUE)
        view = (await api.get(PATH, headers=world.admin.h)).json()
        assert (view["workflow"], view["paused"], view["runs"]) == ("ReconcileLedger", False, [])
        assert view["next_run_at"] is not None

        before = datetime.now(UTC) - timedelta(seconds=1)
        r = await api.post(PATH, headers=world.admin.h)
        assert r.status_code == 202, r.text
        assert r.json()["schedule_id"] == LEDGER_RECONCILE_SCHEDULE
        assert datetime.fromisoformat(r.json()["triggered_at"]) >= before

        deadline = asyncio.get_running_loop().time() + 10
        while not (runs := (await api.get(PATH, headers=world.admin.h)).json()["runs"]):
            assert asyncio.get_running_loop().time() < deadline, "the trigger started no run"
            await asyncio.sleep(0.1)
        [run] = runs
        assert run["workflow_id"].startswith(f"{LEDGER_RECONCILE_SCHEDULE}-")
        assert run["status"] == "running" and run["result"] is None
        assert datetime.fromisoformat(run["scheduled_at"]) >= before
        await temporal.get_workflow_handle(run["workflow_id"]).terminate("test over")
    finally:
        await handle.delete()

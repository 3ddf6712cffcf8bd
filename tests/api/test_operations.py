"""Operation show while a workflow really runs: step and progress from its `status`
query, attempt and last error from its pending activity, and the status Temporal
reports when a workflow closed without updating its row.

A test worker runs stand-in LaunchInstance/DeleteInstance workflows on a task queue
of this test only (the API's control queue is pointed there), so the workflows other
tests leave Running on `control` are not touched.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

import vmflow.operations
from tests.api.conftest import World, create_server
from vmflow.contracts.instances import OperationRef, StepStatus


@activity.defn(name="test.flaky")
async def flaky() -> None:
    raise RuntimeError("disk full on the test host")


@workflow.defn(name="LaunchInstance")
class StuckLaunch:
    """Retries a failing activity forever, reporting a step through the status query."""

    @workflow.run
    async def run(self, ref: OperationRef) -> None:
        await workflow.execute_activity(
            flaky, start_to_close_timeout=timedelta(seconds=5),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=200),
                                     backoff_coefficient=1.0))

    @workflow.query(name="status")
    def status(self) -> StepStatus:
        return StepStatus(step="spawning", progress=40, host="h1")


@workflow.defn(name="DeleteInstance")
class QuickDelete:
    """Completes at once without touching the Operation row, as if its worker died
    right before the last activity."""

    @workflow.run
    async def run(self, ref: OperationRef) -> None:
        return None


@pytest.fixture
async def worker(temporal: Client, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    queue = f"test-control-{uuid.uuid4()}"
    monkeypatch.setattr(vmflow.operations, "CONTROL_QUEUE", queue)
    async with Worker(temporal, task_queue=queue, workflows=[StuckLaunch, QuickDelete],
                      activities=[flaky], workflow_runner=UnsandboxedWorkflowRunner()):
        yield queue


async def poll(api: httpx.AsyncClient, path: str, headers: dict[str, str],
               until: Any, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = (await api.get(path, headers=headers)).json()
        if until(body) or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.2)


async def test_running_operation_shows_step_attempt_and_error(
        api: httpx.AsyncClient, world: World, temporal: Client, worker: str) -> None:
    created = await create_server(api, world.alice, name="progress")
    op_id, wf_id = created["operation"]["id"], created["operation"]["workflow_id"]
    desc = await temporal.get_workflow_handle(wf_id).describe()
    assert desc.task_queue == worker
    op = await poll(api, f"/v1/operations/{op_id}", world.alice.h,
                    lambda b: (b["attempt"] or 0) >= 2 and b["step"] is not None)
    assert op["status"] == "running"
    assert (op["step"], op["progress"]) == ("spawning", 40)
    assert op["attempt"] >= 2
    assert "disk full on the test host" in op["last_error"]
    await temporal.get_workflow_handle(wf_id).terminate(reason="test")


async def test_completed_workflow_with_a_stale_row_reads_succeeded(
        api: httpx.AsyncClient, world: World, temporal: Client, worker: str) -> None:
    created = await create_server(api, world.alice, name="stale")
    sid, wf_id = created["server"]["id"], created["operation"]["workflow_id"]
    await temporal.get_workflow_handle(wf_id).terminate(reason="test")
    r = await api.delete(f"/v1/servers/{sid}", headers=world.alice.h)
    assert r.status_code == 202, r.text
    op_id = r.json()["operation"]["id"]
    await temporal.get_workflow_handle(wf_id).result()  # QuickDelete has completed
    op = (await api.get(f"/v1/operations/{op_id}", headers=world.alice.h)).json()
    assert (op["action"], op["status"], op["finished_at"] is not None) == (
        "delete", "succeeded", True)
    assert op["last_error"] is None

"""DELETE while an operation runs: it is cancelled, compensates, and only then does
the delete start. Stand-in workflows on a task queue of this test only play the
launch (compensating for a moment when cancelled) and the delete."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from temporalio import workflow
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

import vmflow.operations
from tests.api.conftest import World, create_server, operations_of
from vmflow.contracts.instances import OperationRef

COMPENSATION_S = 0.5


@workflow.defn(name="LaunchInstance")
class CancellableLaunch:
    @workflow.run
    async def run(self, ref: OperationRef) -> None:
        try:
            await workflow.wait_condition(lambda: False)
        except asyncio.CancelledError:
            await asyncio.sleep(COMPENSATION_S)  # undoing its steps takes a while
            raise


@workflow.defn(name="DeleteInstance")
class PendingDelete:
    @workflow.run
    async def run(self, ref: OperationRef) -> None:
        await workflow.wait_condition(lambda: False)


@pytest.fixture
async def worker(temporal: Client, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    queue = f"test-cancel-{uuid.uuid4()}"
    monkeypatch.setattr(vmflow.operations, "CONTROL_QUEUE", queue)
    async with Worker(temporal, task_queue=queue, workflows=[CancellableLaunch, PendingDelete],
                      workflow_runner=UnsandboxedWorkflowRunner()):
        yield queue


async def test_delete_waits_for_the_compensation_then_deletes(
        api: httpx.AsyncClient, world: World, temporal: Client, worker: str) -> None:
    created = await create_server(api, world.alice, name="cancel-then-delete")
    sid = created["server"]["id"]
    launch_run = operations_of(sid)[0].run_id
    started = time.monotonic()
    r = await api.delete(f"/v1/servers/{sid}", headers=world.alice.h)
    assert r.status_code == 202, r.text
    assert time.monotonic() - started >= COMPENSATION_S  # it did wait
    launch = temporal.get_workflow_handle(f"instance-{sid}", run_id=launch_run)
    assert (await launch.describe()).status == WorkflowExecutionStatus.CANCELED
    desc = await temporal.get_workflow_handle(f"instance-{sid}").describe()
    assert (desc.workflow_type, desc.status) == ("DeleteInstance",
                                                 WorkflowExecutionStatus.RUNNING)
    assert [o.action for o in operations_of(sid)] == ["create", "delete"]
    assert operations_of(sid)[1].id == r.json()["operation"]["id"]

    # a delete already running is not cancelled by another
    r = await api.delete(f"/v1/servers/{sid}", headers=world.alice.h)
    assert r.status_code == 409
    assert r.json()["error"]["message"] == (
        f"another operation (delete) is running on instance {sid}")
    await temporal.get_workflow_handle(f"instance-{sid}").terminate(reason="test")

"""A worker as workers/common.py connects it (connect_patiently): JSON log lines from its
activity and workflow carry their ids, and the Temporal SDK's metrics are served on the
worker's own VMFLOW_WORKER_METRICS_ADDRESS. A real worker on the tier's dev server runs
a small workflow on a queue of its own."""

from __future__ import annotations

import io
import json
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

import httpx
from temporalio import activity, workflow
from temporalio.worker import Worker

from vmflow import logs, settings
from vmflow.processes import free_port
from workers.common import connect_patiently


@dataclass(frozen=True)
class StepInput:
    operation_id: str
    instance_id: str
    host: str


@activity.defn(name="test.logged_step")
def logged_step(req: StepInput) -> str:
    logging.getLogger("vmflow.test.activity").info("step of %s", req.instance_id)
    return req.instance_id


@workflow.defn(name="TestLoggedWorkflow", sandboxed=False)
class LoggedWorkflow:
    @workflow.run
    async def run(self, req: StepInput) -> str:
        workflow.logger.info("workflow runs the step")
        return await workflow.execute_activity(
            "test.logged_step", req, result_type=str,
            start_to_close_timeout=timedelta(seconds=30))


async def test_worker_logs_json_with_ids_and_serves_sdk_metrics(
        vmflow_home: settings.Settings) -> None:
    port = free_port()
    s = vmflow_home.model_copy(update={"log_format": "json",
                                       "worker_metrics_address": f"127.0.0.1:{port}"})
    out = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    assert logs.setup(s, stream=out) is True
    try:
        client = await connect_patiently(s, wait_s=10)
        queue = f"test-logs-{uuid.uuid4().hex[:8]}"
        req = StepInput(operation_id=f"op-{uuid.uuid4()}", instance_id=str(uuid.uuid4()),
                        host="h-logs")
        workflow_id = f"instance-{req.instance_id}"
        with ThreadPoolExecutor(max_workers=2) as executor:
            async with Worker(client, task_queue=queue, workflows=[LoggedWorkflow],
                              activities=[logged_step], activity_executor=executor):
                result = await client.execute_workflow(
                    "TestLoggedWorkflow", req, id=workflow_id, task_queue=queue,
                    result_type=str, execution_timeout=timedelta(seconds=60))
                assert result == req.instance_id
                async with httpx.AsyncClient() as http:
                    r = await http.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    assert r.status_code == 200
    assert "temporal_" in r.text and f'task_queue="{queue}"' in r.text

    lines = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
    step = next(line for line in lines if line["logger"] == "vmflow.test.activity")
    assert step["message"] == f"step of {req.instance_id}"
    assert step["workflow_id"] == workflow_id and step["activity"] == "test.logged_step"
    assert (step["operation_id"], step["resource_id"], step["host"]) == (
        req.operation_id, req.instance_id, req.host)
    wf = next(line for line in lines if "workflow runs the step" in line["message"])
    assert wf["workflow_id"] == workflow_id and wf["workflow_type"] == "TestLoggedWorkflow"
    assert wf["resource_id"] == req.instance_id

"""What both workers share: connecting (with patience while Temporal starts) and
running until SIGTERM, then shutting down gracefully."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from vmflow import logs, worker_metrics
from vmflow.settings import Settings
from vmflow.temporal import connect

log = logging.getLogger("vmflow.worker")

# The sandbox re-imports, for every workflow run, each module the run imports that is
# not passed through: each launch executed workflows/instance/launch.py and its
# workflows/_base helpers again (~40 ms of CPU per run on a loaded 2-core machine,
# measured with -X importtime). Workflows import only vmflow's pure modules
# (contracts, states, names: tests/unit/test_import_boundaries.py) and keep no
# module-level state, so both packages load once per process. The price: code passed
# through sees the real standard library, so the worker no longer traps a forbidden
# call (datetime.now, open) in workflows/; the replay tests run every workflow under
# the default, fully restricted sandbox and do (docs/decisions.md).
PASSTHROUGH = ("vmflow", "workflows")


def workflow_runner() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH))


async def connect_patiently(settings: Settings, wait_s: float = 60) -> Client:
    """The worker's client, on a runtime serving the SDK's metrics if the worker has a
    metrics address (made once: the runtime binds the port), with the log ids' interceptor."""
    deadline = asyncio.get_running_loop().time() + wait_s
    runtime = worker_metrics.runtime(settings)
    if runtime is not None:
        log.info("Temporal SDK metrics on http://%s/metrics", settings.worker_metrics_address)
    while True:
        try:
            return await connect(settings, runtime=runtime, interceptors=[logs.LogContext()])
        except RuntimeError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)


async def run_until_signalled(worker: Worker) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with worker:
        log.info("worker on %s running", worker.task_queue)
        # what start-up built (modules, the sandbox's imports) lives as long as the
        # process: out of the collector's sight, a full collection stops walking it
        gc.collect()
        gc.freeze()
        await stop.wait()
    log.info("worker on %s stopped", worker.task_queue)


def setup_logging() -> None:
    """Text, or JSON lines with the activity's ids (VMFLOW_LOG_FORMAT)."""
    logs.setup()

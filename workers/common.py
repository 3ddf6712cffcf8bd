"""What both workers share: connecting (with patience while Temporal starts) and
running until SIGTERM, then shutting down gracefully."""

from __future__ import annotations

import asyncio
import logging
import signal

from temporalio.client import Client
from temporalio.worker import Worker

from vmflow.settings import Settings
from vmflow.temporal import connect

log = logging.getLogger("vmflow.worker")


async def connect_patiently(settings: Settings, wait_s: float = 60) -> Client:
    deadline = asyncio.get_running_loop().time() + wait_s
    while True:
        try:
            return await connect(settings)
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
        await stop.wait()
    log.info("worker on %s stopped", worker.task_queue)


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

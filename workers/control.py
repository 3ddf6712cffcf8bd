"""The control worker: every workflow plus the database activities, on `control`."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import Worker

import workflows
from activities.control import ControlActivities
from vmflow.names import CONTROL_QUEUE
from vmflow.settings import Settings, get_settings
from workers.common import connect_patiently, run_until_signalled, setup_logging


def build(client: Client, settings: Settings, executor: ThreadPoolExecutor) -> Worker:
    acts = ControlActivities(settings, client)
    return Worker(
        client,
        task_queue=CONTROL_QUEUE,
        workflows=workflows.ALL,
        activities=acts.all(),
        activity_executor=executor,
    )


async def main() -> None:
    setup_logging()
    settings = get_settings()
    client = await connect_patiently(settings)
    with ThreadPoolExecutor(max_workers=16) as executor:
        await run_until_signalled(build(client, settings, executor))


if __name__ == "__main__":
    asyncio.run(main())

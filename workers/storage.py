"""The storage worker of one host: share activities on `storage.<storage_name>`.

On start it ensures the btrfs share pool (made when absent, mounted, every share
mounted at its export path) and, when it had to mount shares (after a reboot),
has ganesha resolve their exports anew; then it serves the pool and ganesha's
exports. It never touches the database itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from activities.storage.share_pool import SharePool
from activities.storage.shares import Exporter, StorageActivities
from vmflow.names import storage_queue
from vmflow.settings import Settings, get_settings
from workers import fault_point
from workers.common import connect_patiently, log, run_until_signalled, setup_logging

MAX_ACTIVITIES = 8  # each is a few btrfs calls and a D-Bus call


def exporter(settings: Settings) -> Exporter:
    # imported here: the pool's tests and tools need no D-Bus client
    from activities.storage.ganesha import GaneshaExports

    return GaneshaExports(settings)


def activities(settings: Settings, export: Exporter) -> list[Callable[..., Any]]:
    """Every activity this worker registers (each declared in StorageStub)."""
    return StorageActivities(settings, export).all()


def build(client: Client, settings: Settings, executor: ThreadPoolExecutor,
          export: Exporter | None = None) -> Worker:
    return Worker(
        client,
        task_queue=storage_queue(settings.storage_name),
        activities=activities(settings, export if export is not None else exporter(settings)),
        activity_executor=executor,
        interceptors=fault_point.interceptors(settings),
        max_concurrent_activities=MAX_ACTIVITIES,
    )


async def reexport(settings: Settings, shares: list[str], wait_s: float = 60) -> None:
    """After a reboot ganesha may have loaded exports before their shares were mounted
    here; it keeps serving the bare directories until each export is added anew."""
    from activities.storage.ganesha import GaneshaExports, GaneshaUnavailable

    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while True:
        try:
            done = await asyncio.to_thread(GaneshaExports(settings).reexport_all)
            log.info("mounted %d share(s) at start; re-exported %d", len(shares), len(done))
            return
        except GaneshaUnavailable:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(1)


async def main() -> None:
    setup_logging()
    settings = get_settings()
    pool = SharePool(settings)
    mounted = await asyncio.to_thread(pool.ensure)
    log.info("share pool %s mounted at %s (%d GiB)", pool.image, pool.mount,
             settings.share_pool_gb)
    if mounted:
        await reexport(settings, mounted)
    client = await connect_patiently(settings)
    with ThreadPoolExecutor(max_workers=MAX_ACTIVITIES) as executor:
        await run_until_signalled(build(client, settings, executor))


if __name__ == "__main__":
    asyncio.run(main())

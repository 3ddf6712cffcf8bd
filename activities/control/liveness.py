"""What Temporal knows is alive: a hypervisor host (its heartbeat, judged by
vmflow.host_liveness with VMFLOW_HOST_DOWN_AFTER), a storage worker (its task queue
has recent pollers), a workflow (its id has a running execution)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import datetime

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from vmflow.host_liveness import DESCRIBE_TIMEOUT, fresh, last_seen, newest_poll
from vmflow.names import storage_queue

POLLER_FRESH_S = 60  # storage workers: their idle long poll is re-issued about every 55 s
DESCRIBE_CONCURRENCY = 16


async def host_alive(client: Client, host: str, down_after_s: float) -> bool:
    """The host's heartbeat is fresh (forced_down is the caller's to apply)."""
    return fresh(await last_seen(client, host), down_after_s)


class HostHeartbeats:
    """Which hosts are up, as the scheduler asks it for its best candidates. A heartbeat
    only gets newer, so one seen earlier that is still younger than the down-after time
    proves the host up exactly as asking Temporal again would: that answer is reused
    until it ages out. A host not known fresh is asked every time (2 describe RPCs, at
    most DESCRIBE_CONCURRENCY questions at once), so a host coming up counts at once
    and one that stops counts as down when its last heartbeat ages out, as before."""

    def __init__(self, client: Client, down_after_s: float):
        self.client, self.down_after_s = client, down_after_s
        self.seen: dict[str, datetime] = {}
        self.gate = asyncio.Semaphore(DESCRIBE_CONCURRENCY)

    async def alive(self, hosts: list[str]) -> list[bool]:
        return list(await asyncio.gather(*(self.host_alive(h) for h in hosts)))

    async def host_alive(self, host: str) -> bool:
        if fresh(self.seen.get(host), self.down_after_s):
            return True
        async with self.gate:
            seen = await last_seen(self.client, host)
        if seen is not None:
            self.seen[host] = max(seen, self.seen.get(host, seen))
        return fresh(seen, self.down_after_s)


async def storage_alive(client: Client, host: str) -> bool:
    """A storage host's worker polls storage.<host>."""
    return fresh(await newest_poll(client, storage_queue(host)), POLLER_FRESH_S)


async def workflows_running(client: Client, workflow_ids: Iterable[str]) -> set[str]:
    """Those of the ids with a running execution. Temporal, not the Operation rows: a
    row left `running` by a dead worker must not hold anything forever. An error other
    than "no such workflow" raises (the caller's step is retried): never act on a guess."""
    gate = asyncio.Semaphore(DESCRIBE_CONCURRENCY)

    async def runs(workflow_id: str) -> bool:
        async with gate:
            try:
                desc = await client.get_workflow_handle(workflow_id).describe(
                    rpc_timeout=DESCRIBE_TIMEOUT)
            except RPCError as e:
                if e.status == RPCStatusCode.NOT_FOUND:
                    return False
                raise
            return desc.status == WorkflowExecutionStatus.RUNNING

    ids = sorted(set(workflow_ids))
    answers = await asyncio.gather(*(runs(i) for i in ids))
    return {i for i, running in zip(ids, answers, strict=True) if running}

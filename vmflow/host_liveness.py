"""When a hypervisor host was last seen, and whether it counts as up (Nova's
servicegroup: a fresh heartbeat and not forced down).

The heartbeat is a poll seen by Temporal, which keeps each poller's last access time:
the worker's own polls of `hv.<host>`, and a short poll of `beat.<host>` the worker
repeats every few seconds (`beat`). The beat is needed because an idle worker's long
poll is re-issued only about every 55 s, so without it any down-after time under a
minute would call idle hosts down. Nothing polls `beat.<host>` for work: no task is
ever sent there. Hosts never touch the database, and no workflow runs per beat.
Shared by the API and the control activities, so both judge a host the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Literal

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeTaskQueueRequest,
    PollActivityTaskQueueRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError

from vmflow.names import hv_queue

DESCRIBE_TIMEOUT = timedelta(seconds=10)
BEAT_MIN_S, BEAT_MAX_S = 3.0, 20.0  # the server refuses polls shorter than about 2 s


def beat_queue(host: str) -> str:
    return f"beat.{host}"


def beat_period(down_after_s: float) -> float:
    """Three beats per down-after time, so one late beat never reads as down."""
    return min(BEAT_MAX_S, max(BEAT_MIN_S, down_after_s / 3))


async def newest_poll(client: Client, queue: str) -> datetime | None:
    """When a worker last polled `queue` (None: never, or Temporal forgot it)."""
    resp = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(namespace=client.namespace, task_queue=TaskQueue(name=queue),
                                 task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY),
        timeout=DESCRIBE_TIMEOUT)
    times = [p.last_access_time.ToDatetime(tzinfo=UTC) for p in resp.pollers
             if p.HasField("last_access_time")]
    return max(times, default=None)


async def last_seen(client: Client, host: str) -> datetime | None:
    """The newest poll of the host's queue or its beat queue (None: never seen, or
    Temporal forgot it). Errors raise: the caller decides what a failed question means."""
    polls = await asyncio.gather(newest_poll(client, hv_queue(host)),
                                 newest_poll(client, beat_queue(host)))
    return max((t for t in polls if t is not None), default=None)


def fresh(seen: datetime | None, down_after_s: float, now: datetime | None = None) -> bool:
    """The heartbeat is younger than the down-after time."""
    if seen is None:
        return False
    return (now or datetime.now(UTC)) - seen < timedelta(seconds=down_after_s)


def state(heartbeat_fresh: bool, forced_down: bool) -> Literal["up", "down"]:
    """Nova's `state`: forced_down overrides the heartbeat."""
    return "up" if heartbeat_fresh and not forced_down else "down"


async def beat(client: Client, host: str, down_after_s: float) -> None:
    """Heartbeat forever: each poll of beat.<host> is recorded by Temporal when it
    starts; it is cut short after one period (no task ever comes) and issued again."""
    period = beat_period(down_after_s)
    request = PollActivityTaskQueueRequest(namespace=client.namespace,
                                           task_queue=TaskQueue(name=beat_queue(host)),
                                           identity=f"beat@{host}")
    while True:  # bounded by the worker's life: cancelled when it stops
        started = asyncio.get_running_loop().time()
        # the deadline is the expected end; Temporal away: try again after the period
        with contextlib.suppress(RPCError):
            await client.workflow_service.poll_activity_task_queue(
                request, timeout=timedelta(seconds=period))
        rest = period - (asyncio.get_running_loop().time() - started)
        if rest > 0:
            await asyncio.sleep(rest)

"""Is a host's worker alive? Temporal knows: its task queue has recent pollers."""

from __future__ import annotations

import time

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from vmflow.names import hv_queue

POLLER_FRESH_S = 60


async def host_alive(client: Client, host: str) -> bool:
    resp = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=hv_queue(host)),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
        )
    )
    now = time.time()
    return any(now - p.last_access_time.ToSeconds() < POLLER_FRESH_S for p in resp.pollers)

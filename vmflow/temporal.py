"""The Temporal client, configured the same way for every process."""

from __future__ import annotations

from collections.abc import Sequence

from temporalio.client import Client, Interceptor
from temporalio.runtime import Runtime

from vmflow.settings import Settings, get_settings


async def connect(settings: Settings | None = None, *, runtime: Runtime | None = None,
                  interceptors: Sequence[Interceptor] = ()) -> Client:
    """`runtime`: a worker's own (vmflow.worker_metrics); `interceptors` that are also
    worker interceptors apply to every worker on the client (vmflow.logs.LogContext)."""
    s = settings or get_settings()
    return await Client.connect(s.temporal_address, namespace=s.temporal_namespace,
                                runtime=runtime, interceptors=interceptors)

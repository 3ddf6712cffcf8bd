"""The API's Prometheus metrics (`GET /metrics`, unauthenticated: docs/decisions.md,
"/metrics is open and holds counts only").

- requests: vmflow_http_requests_total and vmflow_http_request_duration_seconds by
  method, route template (`/v1/servers/{server_id}`, never a raw path: no ids in labels)
  and status code (RequestMetrics, the outermost app middleware but one);
- operations: vmflow_operation_duration_seconds by resource_type, type (the action) and
  outcome, one observation per Operation row as it ends, whichever process ended it
  (the control worker's finish step, a reconciler, the API): FinishedOperations reads
  the rows that ended since the last scrape;
- gauges read at scrape time: instances by vm_state, operations by status, hosts, and
  each task queue's approximate backlog (QueueBacklog: Temporal's DescribeTaskQueue,
  cached for BACKLOG_TTL_S so scrapes do not hammer Temporal).

One registry per process; the workers' own Temporal SDK metrics are served by each
worker (vmflow.worker_metrics).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlmodel import Session, col, select
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from vmflow import logs
from vmflow.models import Host, Instance, Operation, now
from vmflow.names import CONTROL_QUEUE, hv_queue, storage_queue
from vmflow.settings import Settings

# what generate_latest writes (prometheus_client's own default names a newer version)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UNMATCHED = "unmatched"  # a path no route serves: one label, whatever the path was
BACKLOG_TTL_S = 10.0
BACKLOG_RPC_TIMEOUT = timedelta(seconds=2)
# a row whose commit came this much later than its finished_at is not counted
LATE_COMMIT = timedelta(seconds=60)
SCAN_LIMIT = 10_000  # rows one scrape reads at most; the rest wait for the next

REGISTRY = CollectorRegistry(auto_describe=True)
HTTP_LABELS = ("method", "route", "code")
HTTP_REQUESTS = Counter("vmflow_http_requests", "API requests by route template and status code.",
                        HTTP_LABELS, registry=REGISTRY)
HTTP_DURATIONS = Histogram(
    "vmflow_http_request_duration_seconds", "API requests by route template and status code.",
    HTTP_LABELS, registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
OPERATION_DURATIONS = Histogram(
    "vmflow_operation_duration_seconds", "Operations that ended, by type and outcome.",
    ("resource_type", "type", "outcome"), registry=REGISTRY,
    buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600))




# ---- requests ---------------------------------------------------------------------------


def route_template(scope: Scope) -> str:
    """The template of the route that served `scope` (with a mounted facade's prefix),
    or UNMATCHED: read after the app ran, from the scope the routers filled in."""
    route = scope.get("route")
    if route is None or isinstance(route, Mount):
        return UNMATCHED
    root = scope.get("root_path", "")
    app_root = scope.get("app_root_path", "")
    if app_root and root.startswith(app_root):
        root = root[len(app_root):]
    return root + str(getattr(route, "path", UNMATCHED))


class RequestMetrics:
    """Counts and times every HTTP request, and gives the log lines logged while it
    runs a request id, its method and path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # unless a response starts: an exception reached the server
        started = time.perf_counter()

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            with logs.context(request_id=f"req-{uuid.uuid4()}", method=scope["method"],
                              path=scope["path"]):
                await self.app(scope, receive, send_noting_status)
        finally:
            labels = (scope["method"], route_template(scope), str(status))
            HTTP_REQUESTS.labels(*labels).inc()
            HTTP_DURATIONS.labels(*labels).observe(time.perf_counter() - started)


# ---- operations ---------------------------------------------------------------------------


class FinishedOperations:
    """Observes each Operation row once when it has ended. Rows that ended before this
    process started are not counted (a counter starts at zero with its process).

    A row's finished_at is set before its transaction commits, so each scan rereads
    the last LATE_COMMIT and skips the ids it has already observed."""

    def __init__(self, since: datetime | None = None) -> None:
        self.floor = since or now()
        self.seen: dict[str, datetime] = {}

    def scan(self, session: Session) -> int:
        """Observe the rows that ended since the last scan; returns how many."""
        rows = session.exec(
            select(Operation).where(col(Operation.finished_at) >= self.floor)
            .order_by(col(Operation.finished_at)).limit(SCAN_LIMIT)).all()
        observed = 0
        for op in rows:
            if op.id in self.seen or op.finished_at is None:
                continue
            self.seen[op.id] = op.finished_at
            duration = max(0.0, (op.finished_at - op.started_at).total_seconds())
            OPERATION_DURATIONS.labels(op.resource_type, op.action, op.status).observe(duration)
            observed += 1
        newest = rows[-1].finished_at if rows else None
        if newest is not None:
            self.floor = max(self.floor, newest - LATE_COMMIT)
            self.seen = {k: v for k, v in self.seen.items() if v >= self.floor}
        return observed


FINISHED = FinishedOperations()


class _DatabaseGauges(Collector):
    """Instances by vm_state, operations by status, running operations and hosts, as
    the last scrape read them (read by refresh(), so collect() does no I/O)."""

    def __init__(self) -> None:
        self.by_state: list[tuple[str, int]] = []
        self.by_status: list[tuple[str, int]] = []
        self.hosts = 0

    def refresh(self, session: Session) -> list[str]:
        """Read the gauges; returns the registered hosts' names."""
        self.by_state = sorted(session.exec(
            select(Instance.vm_state, func.count()).group_by(col(Instance.vm_state))).all())
        self.by_status = sorted(session.exec(
            select(Operation.status, func.count()).group_by(col(Operation.status))).all())
        hosts = list(session.exec(select(Host.name).order_by(col(Host.name))).all())
        self.hosts = len(hosts)
        return hosts

    def collect(self) -> Iterator[Metric]:
        instances = GaugeMetricFamily("vmflow_instances", "Instances by vm_state.",
                                      labels=["vm_state"])
        for state, n in self.by_state:
            instances.add_metric([state], n)
        operations = GaugeMetricFamily("vmflow_operations", "Operations by status.",
                                       labels=["status"])
        for status, n in self.by_status:
            operations.add_metric([status], n)
        yield instances
        yield operations
        yield GaugeMetricFamily("vmflow_operations_running",
                                "Operations whose workflow is running.",
                                value=dict(self.by_status).get("running", 0))
        yield GaugeMetricFamily("vmflow_hosts", "Registered hypervisor hosts.", value=self.hosts)


DATABASE = _DatabaseGauges()
REGISTRY.register(DATABASE)


# ---- task queues --------------------------------------------------------------------------


def task_queues(settings: Settings, hosts: Iterable[str]) -> list[tuple[str, str]]:
    """(queue, kind) whose backlog is shown: control's workflow and activity tasks,
    each registered host's queue and the storage queue."""
    queues = [(CONTROL_QUEUE, "workflow"), (CONTROL_QUEUE, "activity")]
    queues += [(hv_queue(h), "activity") for h in hosts]
    if settings.storage_hosts:
        queues.append((storage_queue(settings.storage_name), "activity"))
    return queues


class QueueBacklog(Collector):
    """vmflow_task_queue_backlog{queue, kind}: Temporal's approximate backlog, asked at
    most once per `ttl` seconds; a queue Temporal did not answer for is left out."""

    KINDS = {"workflow": TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
             "activity": TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY}

    def __init__(self, ttl: float = BACKLOG_TTL_S) -> None:
        self.ttl = ttl
        self.asked_at = -float("inf")
        self.values: dict[tuple[str, str], int] = {}

    async def _one(self, client: Client, queue: str, kind: str) -> int:
        resp = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
                task_queue_type=self.KINDS[kind], report_stats=True),
            timeout=BACKLOG_RPC_TIMEOUT)
        return int(resp.stats.approximate_backlog_count)

    async def refresh(self, client: Client | None, queues: list[tuple[str, str]]) -> None:
        if client is None or time.monotonic() - self.asked_at < self.ttl:
            return
        self.asked_at = time.monotonic()  # before asking: concurrent scrapes ask once
        answers = await asyncio.gather(*(self._one(client, q, k) for q, k in queues),
                                       return_exceptions=True)
        self.values = {qk: n for qk, n in zip(queues, answers, strict=True)
                       if isinstance(n, int)}

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily("vmflow_task_queue_backlog",
                                   "Approximate tasks waiting on a task queue.",
                                   labels=["queue", "kind"])
        for (queue, kind), n in sorted(self.values.items()):
            family.add_metric([queue, kind], n)
        yield family


BACKLOG = QueueBacklog()
REGISTRY.register(BACKLOG)


# ---- the scrape ---------------------------------------------------------------------------


def _read_database(session: Session, settings: Settings) -> list[tuple[str, str]]:
    FINISHED.scan(session)
    return task_queues(settings, DATABASE.refresh(session))


async def render(session: Session, client: Client | None, settings: Settings) -> bytes:
    """The exposition text of this process's registry, after reading what is read at
    scrape time."""
    queues = _read_database(session, settings)
    await BACKLOG.refresh(client, queues)
    return generate_latest(REGISTRY)

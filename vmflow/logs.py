"""Log lines as text (the default) or as JSON objects, one a line (VMFLOW_LOG_FORMAT=json;
`auto`: text on a terminal, JSON otherwise), for a log shipper to index.

A JSON line carries the ids of what it is about where they are known: in a worker's
activity the workflow, the activity, the operation, resource and host taken from the
activity's input (set by LogContext, a client interceptor the workers install); in
workflow code the workflow and its search attributes; in the API the request's id,
method and route template (vmflow.metrics.RequestMetrics sets them).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

from temporalio import activity, client, workflow
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from vmflow.settings import Settings, get_settings

# what the running activity or request is about; each field is optional
LOG_CONTEXT: ContextVar[Mapping[str, Any] | None] = ContextVar("vmflow_log_context",
                                                              default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# input fields naming the resource an activity works on, most specific first
RESOURCE_FIELDS = ("instance_id", "share_id", "snapshot_id", "image_id")
QUEUE_PREFIXES = ("hv.", "storage.")


@contextmanager
def context(**ids: Any) -> Iterator[None]:
    """Add `ids` (None values left out) to every line logged inside the block."""
    merged = {**(LOG_CONTEXT.get() or {}), **{k: v for k, v in ids.items() if v is not None}}
    token = LOG_CONTEXT.set(merged)
    try:
        yield
    finally:
        LOG_CONTEXT.reset(token)


def input_ids(arg: object) -> dict[str, str]:
    """operation_id, resource_id and host of an activity's input dataclass, where it has them."""
    ids: dict[str, str] = {}
    op = getattr(arg, "operation_id", None)
    if isinstance(op, str) and op:
        ids["operation_id"] = op
    for field in RESOURCE_FIELDS:
        value = getattr(arg, field, None)
        if isinstance(value, str) and value:
            ids["resource_id"] = value
            break
    host = getattr(arg, "host", None)
    if isinstance(host, str) and host:
        ids["host"] = host
    return ids


def _queue_host(queue: str) -> str | None:
    for prefix in QUEUE_PREFIXES:
        if queue.startswith(prefix):
            return queue[len(prefix):]
    return None


def _resource_of(workflow_id: str) -> str | None:
    """instance-<id> and share-<id> (names.instance_workflow_id, share_workflow_id)."""
    for prefix in ("instance-", "share-"):
        if workflow_id.startswith(prefix):
            return workflow_id[len(prefix):]
    return None


class _LogContextActivity(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        ids: dict[str, Any] = {"workflow_id": info.workflow_id,
                               "run_id": info.workflow_run_id,
                               "workflow_type": info.workflow_type,
                               "activity": info.activity_type, "attempt": info.attempt,
                               "host": _queue_host(info.task_queue),
                               "resource_id": _resource_of(info.workflow_id or "")}
        if input.args:
            ids.update(input_ids(input.args[0]))
        # a sync activity runs in a copy of this context, so it sees these too
        with context(**ids):
            return await self.next.execute_activity(input)


class LogContext(client.Interceptor, Interceptor):
    """Installed through the client (vmflow.temporal.connect), so every worker on it
    names the activity's ids on its log lines."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _LogContextActivity(next)


def _workflow_ids() -> dict[str, Any]:
    try:
        if not workflow.in_workflow():
            return {}
        info = workflow.info()
    except Exception:  # outside a workflow's event loop
        return {}
    from vmflow.names import SA_HOST, SA_OPERATION, SA_RESOURCE

    attrs = info.typed_search_attributes
    resource = attrs.get(SA_RESOURCE) or info.workflow_id
    return {"workflow_id": info.workflow_id, "run_id": info.run_id,
            "workflow_type": info.workflow_type, "action": attrs.get(SA_OPERATION),
            "host": attrs.get(SA_HOST), "resource_id": _resource_of(resource)}


def _request_id() -> str | None:
    # the OpenStack facades' request id; only once vmflow.models is loaded (the API)
    models = sys.modules.get("vmflow.models")
    var = getattr(models, "REQUEST_ID", None)
    return var.get() if var is not None else None


def record_ids(record: logging.LogRecord) -> dict[str, Any]:
    """The ids known for `record`: the context's, then what Temporal's loggers attach."""
    ids: dict[str, Any] = dict(LOG_CONTEXT.get() or {})
    temporal_activity = getattr(record, "temporal_activity", None)
    if isinstance(temporal_activity, Mapping):
        ids.setdefault("workflow_id", temporal_activity.get("workflow_id"))
        ids.setdefault("activity", temporal_activity.get("activity_type"))
    for key, value in _workflow_ids().items():
        ids.setdefault(key, value)
    request_id = _request_id()
    if request_id:
        ids["request_id"] = request_id
    return {k: v for k, v in ids.items() if v is not None}


class JsonFormatter(logging.Formatter):
    """{"ts", "level", "logger", "message", <ids>, "exc"?} on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
        }
        line.update(record_ids(record))
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def wants_json(settings: Settings, stream: TextIO) -> bool:
    if settings.log_format == "auto":
        return not stream.isatty()
    return settings.log_format == "json"


def setup(settings: Settings | None = None, stream: TextIO | None = None) -> bool:
    """Configure the root logger at INFO in the chosen format; True for JSON."""
    s = settings or get_settings()
    out = stream or sys.stderr
    handler = logging.StreamHandler(out)
    as_json = wants_json(s, out)
    handler.setFormatter(JsonFormatter() if as_json else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return as_json

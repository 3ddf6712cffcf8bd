"""Activity boundaries derived from a workflow's own history in a clean run: every
ActivityTaskScheduled (its child workflows' too, in order) gives two moments a worker
can die at, right before the attempt and right after it returned, and the worker kind
that runs it, from the task queue (control, hv.<host>, storage.<host>)."""

from __future__ import annotations

import gzip
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory

# the stack component that runs each worker kind (the first hypervisor host)
COMPONENT = {"control": "control", "hypervisor": "hypervisor", "storage": "storage"}


def worker_kind(task_queue: str) -> str:
    if task_queue == "control":
        return "control"
    if task_queue.startswith("hv."):
        return "hypervisor"
    if task_queue.startswith("storage."):
        return "storage"
    raise ValueError(f"no worker kind runs task queue {task_queue!r}")


@dataclass(frozen=True)
class Boundary:
    workflow_type: str
    activity: str
    activity_id: str
    when: str  # before | after
    kind: str  # control | hypervisor | storage
    repeated: bool  # the activity runs more than once in its workflow: match its id too

    @property
    def name(self) -> str:
        suffix = f"#{self.activity_id}" if self.repeated else ""
        return f"{self.workflow_type}:{self.activity}{suffix}:{self.when}"

    def spec(self, attempt: int = 1) -> dict[str, Any]:
        """What workers.fault_point reads from <home>/fault-point.json."""
        spec: dict[str, Any] = {"workflow_type": self.workflow_type, "activity": self.activity,
                                "when": self.when, "attempt": attempt}
        if self.repeated:
            spec["activity_id"] = self.activity_id
        return spec

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "name": self.name}


@dataclass(frozen=True)
class Scheduled:
    activity: str
    activity_id: str
    queue: str


Child = tuple[str, str]  # a child workflow's id and run id


def read(history: WorkflowHistory) -> tuple[str, list[Scheduled | Child]]:
    """The workflow type and, in order, its scheduled activities and the child
    workflows it started."""
    wf_type = ""
    steps: list[Scheduled | Child] = []
    for e in history.events:
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            wf_type = e.workflow_execution_started_event_attributes.workflow_type.name
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            a = e.activity_task_scheduled_event_attributes
            steps.append(Scheduled(a.activity_type.name, a.activity_id, a.task_queue.name))
        elif e.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
            child = e.child_workflow_execution_started_event_attributes.workflow_execution
            steps.append((child.workflow_id, child.run_id))
    return wf_type, steps


Fetch = Callable[[str, str], Awaitable[WorkflowHistory]]


async def derive(history: WorkflowHistory, fetch: Fetch | None = None) -> list[Boundary]:
    """Ordered boundaries of one run; child workflows' are spliced in where each
    started (fetched with `fetch`; without it they are left out)."""
    wf_type, steps = read(history)
    counts = Counter(s.activity for s in steps if isinstance(s, Scheduled))
    out: list[Boundary] = []
    for step in steps:
        if isinstance(step, tuple):
            if fetch is not None:
                out += await derive(await fetch(*step), fetch)
            continue
        for when in ("before", "after"):
            out.append(Boundary(wf_type, step.activity, step.activity_id, when,
                                worker_kind(step.queue), counts[step.activity] > 1))
    return out


async def of_workflow(client: Client, workflow_id: str, run_id: str = "") -> list[Boundary]:
    """Boundaries of one run (the latest without run_id), children included."""

    async def fetch(wid: str, rid: str) -> WorkflowHistory:
        return await client.get_workflow_handle(wid, run_id=rid or None).fetch_history()

    return await derive(await fetch(workflow_id, run_id), fetch)


def recording(directory: Path, workflow_type: str) -> WorkflowHistory | None:
    """The completed run of `workflow_type` recorded in directory (tests/histories,
    tests/histories/record.py); None when that type has none."""
    path = directory / f"{workflow_type}.json.gz"
    if not path.exists():
        return None
    return WorkflowHistory.from_json(workflow_type, gzip.decompress(path.read_bytes()).decode())


def child_types(history: WorkflowHistory) -> dict[Child, str]:
    """The workflow type of each child workflow the run started."""
    return {(a.workflow_execution.workflow_id, a.workflow_execution.run_id): a.workflow_type.name
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED
            for a in [e.child_workflow_execution_started_event_attributes]}


async def of_recorded(directory: Path, workflow_type: str) -> list[Boundary] | None:
    """Boundaries of the recorded completed run of `workflow_type`, children included.
    Recordings are kept per type (the richest run of each), so a child's boundaries come
    from its own type's recording, not from the very run the parent started."""
    history = recording(directory, workflow_type)
    if history is None:
        return None
    types = child_types(history)

    async def fetch(wid: str, rid: str) -> WorkflowHistory:
        child = recording(directory, types[(wid, rid)])
        if child is None:
            raise LookupError(f"no completed recording of child type {types[(wid, rid)]}")
        types.update(child_types(child))
        return child

    return await derive(history, fetch)

"""The instance state machine, declared once: vm_state, task_state, the user-visible
status derived from both, and which action is allowed from which vm_state.

Nova's semantics (compute/api.py check_instance_state): an action names the stable
vm_states it may start from; any running operation already holds the instance's
workflow id, so a second one is refused by Temporal itself (409).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class VmState(StrEnum):
    BUILDING = "building"
    ACTIVE = "active"
    STOPPED = "stopped"
    PAUSED = "paused"
    SUSPENDED = "suspended"
    RESCUED = "rescued"
    RESIZED = "resized"
    SHELVED = "shelved"
    SHELVED_OFFLOADED = "shelved_offloaded"
    ERROR = "error"
    DELETED = "deleted"


class TaskState(StrEnum):
    SCHEDULING = "scheduling"
    BLOCK_DEVICE_MAPPING = "block_device_mapping"
    SPAWNING = "spawning"
    DELETING = "deleting"


@dataclass(frozen=True)
class Transition:
    action: str
    allowed_from: frozenset[VmState]
    task_state: TaskState | None
    target: VmState | None  # None: the state it started from


ALL_STATES = frozenset(VmState) - {VmState.DELETED}

TRANSITIONS: dict[str, Transition] = {
    t.action: t
    for t in [
        Transition("create", frozenset(), TaskState.SCHEDULING, VmState.ACTIVE),
        Transition("delete", ALL_STATES, TaskState.DELETING, VmState.DELETED),
    ]
}

# status for a stable vm_state, and task_states that override it (Nova's names)
_STATUS = {
    VmState.BUILDING: "BUILD",
    VmState.ACTIVE: "ACTIVE",
    VmState.STOPPED: "SHUTOFF",
    VmState.PAUSED: "PAUSED",
    VmState.SUSPENDED: "SUSPENDED",
    VmState.RESCUED: "RESCUE",
    VmState.RESIZED: "VERIFY_RESIZE",
    VmState.SHELVED: "SHELVED",
    VmState.SHELVED_OFFLOADED: "SHELVED_OFFLOADED",
    VmState.ERROR: "ERROR",
    VmState.DELETED: "DELETED",
}
_TASK_STATUS: dict[str, str] = {}


class ActionNotAllowed(Exception):
    def __init__(self, action: str, vm_state: str):
        self.action, self.vm_state = action, vm_state
        allowed = sorted(TRANSITIONS[action].allowed_from) if action in TRANSITIONS else []
        super().__init__(
            f"Cannot '{action}' an instance while it is in vm_state {vm_state}"
            + (f"; allowed from: {', '.join(allowed)}" if allowed else "")
        )


def status(vm_state: str, task_state: str | None) -> str:
    """The one place the user-visible status is derived."""
    if task_state and task_state in _TASK_STATUS:
        return _TASK_STATUS[task_state]
    return _STATUS.get(VmState(vm_state), "UNKNOWN")


def check_action(action: str, vm_state: str) -> Transition:
    t = TRANSITIONS[action]
    if VmState(vm_state) not in t.allowed_from:
        raise ActionNotAllowed(action, vm_state)
    return t

"""The share state machine (Manila's), declared once like vmflow.states: a share's
status, which action may start from which status, and the access rule states.

A running mutating operation holds the workflow id share-<id>, so a second one is
refused by Temporal itself (409); this table refuses what the status forbids.
"""

from __future__ import annotations

from enum import StrEnum


class ShareStatus(StrEnum):
    CREATING = "creating"
    AVAILABLE = "available"
    EXTENDING = "extending"
    SHRINKING = "shrinking"
    DELETING = "deleting"
    ERROR = "error"
    ERROR_DELETING = "error_deleting"
    EXTENDING_ERROR = "extending_error"
    SHRINKING_ERROR = "shrinking_error"


class RuleState(StrEnum):
    QUEUED_TO_APPLY = "queued_to_apply"
    APPLYING = "applying"
    ACTIVE = "active"
    ERROR = "error"
    QUEUED_TO_DENY = "queued_to_deny"
    DENYING = "denying"
    DELETED = "deleted"


S = ShareStatus
# action → the statuses it may start from (Manila share/api.py); force_delete and
# reset_status (admin) are allowed from every status
SHARE_ACTIONS: dict[str, frozenset[ShareStatus]] = {
    "delete": frozenset({S.AVAILABLE, S.ERROR, S.EXTENDING_ERROR, S.SHRINKING_ERROR}),
    "extend": frozenset({S.AVAILABLE}),
    "shrink": frozenset({S.AVAILABLE}),
    "allow_access": frozenset({S.AVAILABLE}),
    "deny_access": frozenset({S.AVAILABLE, S.ERROR}),
    "snapshot": frozenset({S.AVAILABLE}),
    "force_delete": frozenset(S),
    "reset_status": frozenset(S),
}
# what reset_status may set (Manila: the share statuses an admin may force)
RESETTABLE = frozenset(S)
# while one of these is the status, an operation is (or was) running on the share
TRANSITIONAL = frozenset({S.CREATING, S.EXTENDING, S.SHRINKING, S.DELETING})
# where a transitional status goes when the operation that held it ended unfinished
# (vmflow.operation_rows), as Manila leaves a share whose operation failed
SHARE_STUCK = {S.CREATING: S.ERROR, S.EXTENDING: S.EXTENDING_ERROR,
               S.SHRINKING: S.SHRINKING_ERROR, S.DELETING: S.ERROR_DELETING}
SNAPSHOT_STUCK = {"creating": "error", "deleting": "error_deleting"}


def allowed(action: str, status: str) -> bool:
    return status in SHARE_ACTIONS[action]


def table_markdown() -> str:
    """The table for docs/states.md."""
    lines = ["| share action | allowed from status |", "|---|---|"]
    for action, statuses in SHARE_ACTIONS.items():
        shown = "any" if statuses == frozenset(S) else ", ".join(
            s.value for s in S if s in statuses)
        lines.append(f"| {action} | {shown} |")
    return "\n".join(lines)

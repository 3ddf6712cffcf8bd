"""The instance state machine, declared once: vm_state, task_state, the user-visible
status derived from both, and which action is allowed from which vm_state.

Nova's semantics (compute/api.py check_instance_state): an action names the stable
vm_states it may start from; a running operation already holds the instance's
workflow id, so a second one is refused by Temporal itself (409). `docs/states.md`
is generated from this table (`python -m vmflow.states`); a test keeps it current.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from vmflow import share_states


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
    POWERING_ON = "powering-on"
    POWERING_OFF = "powering-off"
    REBOOTING = "rebooting"
    REBOOTING_HARD = "rebooting_hard"
    PAUSING = "pausing"
    UNPAUSING = "unpausing"
    SUSPENDING = "suspending"
    RESUMING = "resuming"
    RESCUING = "rescuing"
    UNRESCUING = "unrescuing"
    DELETING = "deleting"
    IMAGE_SNAPSHOT = "image_snapshot"
    IMAGE_UPLOADING = "image_uploading"
    REBUILDING = "rebuilding"
    REBUILD_SPAWNING = "rebuild_spawning"
    RESIZE_PREP = "resize_prep"
    RESIZE_MIGRATING = "resize_migrating"
    RESIZE_MIGRATED = "resize_migrated"
    RESIZE_FINISH = "resize_finish"
    RESIZE_REVERTING = "resize_reverting"
    RESIZE_CONFIRMING = "resize_confirming"
    MIGRATING = "migrating"
    # shelve and unshelve (Nova's names)
    SHELVING = "shelving"
    SHELVING_IMAGE_PENDING_UPLOAD = "shelving_image_pending_upload"
    SHELVING_IMAGE_UPLOADING = "shelving_image_uploading"
    SHELVING_OFFLOADING = "shelving_offloading"
    UNSHELVING = "unshelving"
    # interface attach/detach (vmflow's own: Nova runs them without a task_state, but
    # here the task_state is what claims the instance for the operation)
    ATTACHING_INTERFACE = "attaching_interface"
    DETACHING_INTERFACE = "detaching_interface"


V = VmState
T = TaskState
LIVE = frozenset(V) - {V.DELETED}


@dataclass(frozen=True)
class Transition:
    action: str
    allowed_from: frozenset[VmState]
    task_state: TaskState | None  # while the operation runs
    target: VmState | None  # after success; None: unchanged
    workflow: str | None  # Temporal workflow type; None: a database-only change
    honours_lock: bool = True  # a locked server refuses it from non-admins
    admin_only: bool = False
    summary: str = ""


def _t(*args: object, **kw: object) -> Transition:
    return Transition(*args, **kw)  # type: ignore[arg-type]


TRANSITIONS: dict[str, Transition] = {
    t.action: t
    for t in [
        _t("create", frozenset(), T.SCHEDULING, V.ACTIVE, "LaunchInstance",
           summary="schedule, claim, fetch image, disk, define, start, wait for the agent"),
        _t("start", frozenset({V.STOPPED}), T.POWERING_ON, V.ACTIVE, "StartInstance",
           summary="power on and wait for the agent"),
        _t("stop", frozenset({V.ACTIVE, V.RESCUED, V.ERROR}), T.POWERING_OFF, V.STOPPED,
           "StopInstance", summary="clean shutdown (agent, then ACPI); destroy after a timeout"),
        _t("reboot-soft", frozenset({V.ACTIVE}), T.REBOOTING, V.ACTIVE, "RebootInstance",
           summary="clean shutdown and power on; escalates to hard after a timeout"),
        _t("reboot-hard", frozenset({V.ACTIVE, V.STOPPED, V.PAUSED, V.SUSPENDED, V.ERROR}),
           T.REBOOTING_HARD, V.ACTIVE, "RebootInstance", summary="destroy and power on"),
        _t("pause", frozenset({V.ACTIVE}), T.PAUSING, V.PAUSED, "PauseInstance",
           summary="stop the vCPUs, memory stays in RAM"),
        _t("unpause", frozenset({V.PAUSED}), T.UNPAUSING, V.ACTIVE, "UnpauseInstance",
           summary="run the vCPUs again"),
        _t("suspend", frozenset({V.ACTIVE}), T.SUSPENDING, V.SUSPENDED, "SuspendInstance",
           summary="save memory to disk (managed save) and stop"),
        _t("resume", frozenset({V.SUSPENDED}), T.RESUMING, V.ACTIVE, "ResumeInstance",
           summary="restore from the managed save"),
        _t("rescue", frozenset({V.ACTIVE, V.STOPPED, V.ERROR}), T.RESCUING, V.RESCUED,
           "RescueInstance", summary="boot a rescue image with the original disk second"),
        _t("unrescue", frozenset({V.RESCUED}), T.UNRESCUING, V.ACTIVE, "UnrescueInstance",
           summary="boot the original disk again"),
        _t("snapshot", frozenset({V.ACTIVE, V.STOPPED, V.PAUSED, V.SUSPENDED}),
           T.IMAGE_SNAPSHOT, None, "SnapshotInstance", honours_lock=False,
           summary="createImage: freeze around a point-in-time copy, thaw, upload"),
        _t("backup", frozenset({V.ACTIVE, V.STOPPED, V.PAUSED, V.SUSPENDED}),
           T.IMAGE_SNAPSHOT, None, "SnapshotInstance", honours_lock=False,
           summary="createBackup: a snapshot typed as backup, keeping the newest `rotation`"),
        _t("rebuild", frozenset({V.ACTIVE, V.STOPPED, V.ERROR}), T.REBUILDING, None,
           "RebuildInstance",
           summary="new disk from an image, same id; the old disk goes once the new one boots "
                   "(from stopped it boots once to prove itself, then stops again; from error "
                   "it ends active)"),
        _t("resize", frozenset({V.ACTIVE, V.STOPPED}), T.RESIZE_PREP, V.RESIZED,
           "ResizeInstance",
           summary="another flavor on another host: claim there, stop, copy the disks, start "
                   "there; the source copy stays until confirm or revert"),
        _t("migrate", frozenset({V.ACTIVE, V.STOPPED}), T.RESIZE_PREP, V.RESIZED,
           "ResizeInstance", admin_only=True,
           summary="cold migration: a resize to the same flavor on another host"),
        _t("confirm-resize", frozenset({V.RESIZED}), T.RESIZE_CONFIRMING, None,
           "ConfirmResize",
           summary="remove the source's copy and claim; back to the state before the resize "
                   "(also done by itself after VMFLOW_RESIZE_CONFIRM_WINDOW)"),
        _t("revert-resize", frozenset({V.RESIZED}), T.RESIZE_REVERTING, None,
           "RevertResize",
           summary="remove the destination's copy and claim, run the source again with the "
                   "old flavor"),
        _t("live-migrate", frozenset({V.ACTIVE, V.PAUSED}), T.MIGRATING, None,
           "LiveMigrateInstance", admin_only=True,
           summary="move the running guest and its disks to another host without stopping it"),
        _t("evacuate", frozenset({V.ACTIVE, V.STOPPED, V.ERROR}), T.REBUILDING, None,
           "EvacuateInstance", admin_only=True,
           summary="the server's host is down: rebuild it on another host from its image "
                   "(local disk contents are lost, as in Nova)"),
        _t("shelve", frozenset({V.ACTIVE, V.STOPPED, V.PAUSED, V.SUSPENDED}), T.SHELVING,
           V.SHELVED, "ShelveInstance",
           summary="clean stop, snapshot of the root disk to the image <name>-shelved; then "
                   "offloaded at once, after VMFLOW_SHELVED_OFFLOAD_TIME seconds, or never (-1)"),
        _t("shelve-offload", frozenset({V.SHELVED}), T.SHELVING_OFFLOADING,
           V.SHELVED_OFFLOADED, "ShelveOffloadInstance", admin_only=True,
           summary="destroy the domain, delete its disks, release the claim: no host left"),
        _t("unshelve", frozenset({V.SHELVED, V.SHELVED_OFFLOADED}), T.UNSHELVING, V.ACTIVE,
           "UnshelveInstance",
           summary="shelved: power on; offloaded: schedule, claim, spawn from the shelve "
                   "image; the image is deleted once the guest runs"),
        _t("unshelve-to-host", frozenset({V.SHELVED_OFFLOADED}), T.UNSHELVING, V.ACTIVE,
           "UnshelveInstance", admin_only=True,
           summary="unshelve {\"host\": ...}: as unshelve, onto the named host"),
        _t("attach-interface", frozenset({V.ACTIVE, V.STOPPED, V.PAUSED}), T.ATTACHING_INTERFACE,
           None, "AttachInterface",
           summary="os-interface POST: a port (made on a network, or given) plugged on the "
                   "server's host and hot-plugged into the guest (live and in its definition)"),
        _t("detach-interface", frozenset({V.ACTIVE, V.STOPPED, V.PAUSED}), T.DETACHING_INTERFACE,
           None, "DetachInterface",
           summary="os-interface DELETE: the NIC out of the guest, the port's filter and DHCP "
                   "reservation off the host; a port vmflow made is deleted, a given one "
                   "unbound"),
        _t("lock", LIVE, None, None, None, honours_lock=False,
           summary="refuse mutating actions from non-admins (owner or admin)"),
        _t("unlock", LIVE, None, None, None, honours_lock=False,
           summary="lift the lock (whoever locked it, or admin)"),
        _t("reset-state", LIVE, None, None, None, honours_lock=False, admin_only=True,
           summary="set vm_state to active or error and clear task_state (audited)"),
        _t("set-metadata", LIVE, None, None, None, summary="change server metadata"),
        _t("delete", LIVE, T.DELETING, V.DELETED, "DeleteInstance",
           summary="cancel a running operation, then destroy, undefine, delete disks, release"),
        _t("force-delete", LIVE, T.DELETING, V.DELETED, "DeleteInstance",
           summary="delete now: terminate any running operation first, no compensation"),
    ]
}

# status for a stable vm_state, and task_states that override it (Nova's names)
_STATUS = {
    V.BUILDING: "BUILD",
    V.ACTIVE: "ACTIVE",
    V.STOPPED: "SHUTOFF",
    V.PAUSED: "PAUSED",
    V.SUSPENDED: "SUSPENDED",
    V.RESCUED: "RESCUE",
    V.RESIZED: "VERIFY_RESIZE",
    V.SHELVED: "SHELVED",
    V.SHELVED_OFFLOADED: "SHELVED_OFFLOADED",
    V.ERROR: "ERROR",
    V.DELETED: "DELETED",
}
_TASK_STATUS = {T.REBOOTING: "REBOOT", T.REBOOTING_HARD: "HARD_REBOOT",
                T.REBUILDING: "REBUILD", T.REBUILD_SPAWNING: "REBUILD",
                T.RESIZE_PREP: "RESIZE", T.RESIZE_MIGRATING: "RESIZE",
                T.RESIZE_MIGRATED: "RESIZE", T.RESIZE_FINISH: "RESIZE",
                T.RESIZE_REVERTING: "REVERT_RESIZE", T.MIGRATING: "MIGRATING"}


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
        return _TASK_STATUS[TaskState(task_state)]
    return _STATUS.get(VmState(vm_state), "UNKNOWN")


def check_action(action: str, vm_state: str) -> Transition:
    t = TRANSITIONS[action]
    if VmState(vm_state) not in t.allowed_from:
        raise ActionNotAllowed(action, vm_state)
    return t


def markdown() -> str:
    """docs/states.md, generated from the table above."""
    states = [s for s in VmState if s is not V.DELETED]
    lines = [
        "# Instance states and actions",
        "",
        "Generated from `vmflow/states.py` by `python -m vmflow.states > docs/states.md`;",
        "a test fails when this file is stale. ✓ = allowed from that vm_state; anything",
        "else answers 409 with the reason. Only one operation runs on an instance at a time.",
        "",
        "| action | " + " | ".join(states) + " | task_state | result | lock | who |",
        "|---" * (len(states) + 5) + "|",
    ]
    for t in TRANSITIONS.values():
        cells = ["✓" if s in t.allowed_from else "" for s in states]
        lines.append(
            f"| {t.action} | " + " | ".join(cells)
            + f" | {t.task_state or '-'} | {t.target or 'unchanged'}"
            + f" | {'honoured' if t.honours_lock else 'ignored'}"
            + f" | {'admin' if t.admin_only else 'member'} |"
        )
    lines += ["", "## What each action does", ""]
    lines += [f"- **{t.action}**: {t.summary}" for t in TRANSITIONS.values()]
    lines += ["", "## Status (what `GET /v1/servers/{id}` shows)", "",
              "| vm_state | status |", "|---|---|"]
    lines += [f"| {s} | {_STATUS[s]} |" for s in VmState]
    lines += ["", "A running task overrides it: "
              + ", ".join(f"task_state {k} → {v}" for k, v in _TASK_STATUS.items()) + ".", ""]
    lines += ["# Share statuses and actions", "",
              "From `vmflow/share_states.py` (Manila's rules). A share's mutating operations",
              "hold the workflow id share-<id>, one at a time; access rules queue on",
              "share-<id>-access instead.", "", share_states.table_markdown(), "",
              "Access rules: queued_to_apply → applying → active | error;",
              "queued_to_deny → denying → deleted | error.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(), end="")

"""Contracts of the instance actions (reboot, rescue, rebuild, the action frame, the
power-state reconciler): one frozen dataclass in, one out, standard library only."""

from __future__ import annotations

from dataclasses import dataclass

from vmflow.contracts.instances import ImageFile


# ---- instance actions ---------------------------------------------------------------
@dataclass(frozen=True)
class RebootRequest:
    instance_id: str
    operation_id: str
    hard: bool


@dataclass(frozen=True)
class RescueRequest:
    instance_id: str
    operation_id: str
    image_id: str | None = None  # None: the image the server was built from
    unrescue_after_s: int | None = None  # then unrescued by itself (AutoUnrescue)


@dataclass(frozen=True)
class AutoUnrescueRequest:
    """The timer a rescue with unrescue_after arms (workflow id
    auto-unrescue-<instance>-<rescue operation>)."""

    instance_id: str
    rescue_operation_id: str
    after_s: int
    busy_retry_s: int = 60  # a server busy with another operation is asked again then


@dataclass(frozen=True)
class TimerStep:
    """What a timer's step did (auto-unrescue, shelve-offload, auto-confirm): started
    its operation (operation_id), found nothing to do (reason), or found the server busy
    (try again later)."""

    busy: bool = False
    operation_id: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class RebuildRequest:
    instance_id: str
    operation_id: str
    image_id: str


@dataclass(frozen=True)
class RebuildImage:
    """rebuild: the new image as begin_action resolved it (root, kernel, ramdisk)."""

    image_id: str
    root: ImageFile
    kernel: ImageFile | None
    ramdisk: ImageFile | None
    cmdline: str  # image property os_command_line
    agent: bool  # image property hw_qemu_guest_agent
    disk_gb: int  # the flavor's root disk: the new overlay's size


@dataclass(frozen=True)
class RebuildDisk:
    """rebuild on the host: the new root disk's base and the boot parameters that
    replace the old ones in the saved define request (domain.json)."""

    instance_id: str
    base_path: str
    base_format: str
    size_gb: int
    kernel_path: str | None
    initrd_path: str | None
    cmdline: str
    agent: bool


@dataclass(frozen=True)
class RestoreOldDisk:
    """rebuild's undo: the old disk and define request back; power on if it ran."""

    instance_id: str
    power_on: bool


@dataclass(frozen=True)
class InstanceImage:
    instance_id: str
    image_id: str


@dataclass(frozen=True)
class ActionStart:
    instance_id: str
    operation_id: str
    action: str  # a key of vmflow.states.TRANSITIONS
    image_id: str | None = None  # rescue: the image to boot


@dataclass(frozen=True)
class InstanceFacts:
    """What a workflow needs to know about an instance when its action starts."""

    instance_id: str
    host: str
    vm_state: str  # before the action
    agent: bool
    agent_timeout_s: float
    stop_timeout_s: float
    reboot_timeout_s: float
    rescue_image: ImageFile | None = None
    rebuild: RebuildImage | None = None  # rebuild: the image to build the new disk from


@dataclass(frozen=True)
class ActionEnd:
    instance_id: str
    operation_id: str
    vm_state: str
    status: str  # succeeded | failed | compensated
    error: str | None = None


@dataclass(frozen=True)
class Shutdown:
    instance_id: str
    timeout_s: float


@dataclass(frozen=True)
class ShutdownResult:
    clean: bool  # False: the guest ignored the request until the timeout


@dataclass(frozen=True)
class Rescue:
    instance_id: str
    rescue_image_path: str
    rescue_image_format: str


@dataclass(frozen=True)
class Observation:
    """The real state of an instance's domain on its host."""

    instance_id: str
    exists: bool
    power: str  # running | paused | shutoff | crashed | absent | other
    managed_save: bool
    rescue: bool

    def vm_state(self) -> str:
        if not self.exists:
            return "error"
        if self.rescue and self.power == "running":
            return "rescued"
        if self.power == "running":
            return "active"
        if self.power == "paused":
            return "paused"
        if self.power == "shutoff" and self.managed_save:
            return "suspended"
        if self.power in ("shutoff", "crashed"):
            return "stopped"
        return "error"


@dataclass(frozen=True)
class InstanceIds:
    instance_ids: list[str]


@dataclass(frozen=True)
class Observations:
    items: list[Observation]


@dataclass(frozen=True)
class SyncCandidates:
    """Instances per host whose DB state can be compared (no operation running)."""

    by_host: dict[str, list[str]]


@dataclass(frozen=True)
class SyncApply:
    observations: list[Observation]


@dataclass(frozen=True)
class SyncResult:
    fixed: list[str]  # "<instance id>: <from> -> <to>"


@dataclass(frozen=True)
class WaitAgent:
    instance_id: str
    deadline: float  # epoch seconds; retries after a worker crash keep the same deadline

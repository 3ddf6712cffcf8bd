"""Contracts of shelve, shelve-offload and unshelve (workflows/instance/shelve*.py,
unshelve.py) and of the offload timer (workflows/background/shelve_offload_timer.py):
one frozen dataclass in, one out, standard library only."""

from __future__ import annotations

from dataclasses import dataclass

from vmflow.contracts.instances import LaunchPlan

# the image property that marks a shelve image (besides image_type=snapshot)
SHELVE_MARKER = "shelve_image"


@dataclass(frozen=True)
class ShelveRequest:
    instance_id: str
    operation_id: str
    # VMFLOW_SHELVED_OFFLOAD_TIME when the API accepted it: 0 offload now, -1 never,
    # N > 0 after N seconds (a timer of its own)
    offload_after_s: int = 0


@dataclass(frozen=True)
class ShelveImage:
    """The queued image a shelve fills: `image_id` is chosen by the workflow, so a
    retried step finds the record it made."""

    instance_id: str
    image_id: str


@dataclass(frozen=True)
class OffloadTimerRequest:
    """The timer a shelve arms (workflow id shelve-offload-<instance>-<shelve op>)."""

    instance_id: str
    shelve_operation_id: str
    after_s: int
    busy_retry_s: int = 60  # a server busy with another operation is asked again then




@dataclass(frozen=True)
class UnshelveRequest:
    instance_id: str
    operation_id: str
    host: str | None = None  # unshelve-to-host (admin): only this host is considered


@dataclass(frozen=True)
class UnshelvePlan:
    """What unshelve needs, read when it begins. `launch` is set for an offloaded
    server: a launch plan whose root is the shelve image."""

    instance_id: str
    vm_state: str  # shelved | shelved_offloaded
    host: str | None  # where a shelved (not offloaded) server still is
    image_id: str  # the shelve image
    agent: bool
    agent_timeout_s: float
    launch: LaunchPlan | None = None


@dataclass(frozen=True)
class UnshelveEnd:
    instance_id: str
    operation_id: str
    host: str  # where the guest now runs

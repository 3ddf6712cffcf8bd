"""Contracts of evacuate (workflows/instance/evacuate.py) and of the clean-up of the
guests it left on their old host once that host registers again
(workflows/background/register_host.py). Standard library only."""

from __future__ import annotations

from dataclasses import dataclass

from vmflow.contracts.instances import LaunchPlan


@dataclass(frozen=True)
class EvacuateRequest:
    instance_id: str
    operation_id: str
    host: str | None = None  # the admin's destination; None: the scheduler picks


@dataclass(frozen=True)
class EvacuationPlan:
    """What begin_evacuation found: the server's launch plan (same flavor, image,
    metadata, keypair, user data), where it was and in which state, and its
    Migration row (evacuation, accepted)."""

    launch: LaunchPlan
    source: str
    vm_state: str  # before the evacuation: decides the end state (Nova)
    migration_id: int
    host: str | None  # the admin's destination, if any


@dataclass(frozen=True)
class MigrationStatus:
    migration_id: int
    status: str  # pre-migrating, once a destination is chosen
    dest_host: str | None = None


@dataclass(frozen=True)
class EvacuationEnd:
    """The end of an evacuation, in one transaction: the server (on `host`, in
    `vm_state`, fault cleared or set), its operation row and its Migration row
    (done, or failed)."""

    instance_id: str
    operation_id: str
    migration_id: int
    host: str  # succeeded: the destination; otherwise the source, as before
    vm_state: str
    status: str  # succeeded | compensated | failed (the operation row's)
    fault: str | None = None


@dataclass(frozen=True)
class EvacuationEnded:
    # the source registered again while the evacuation ran: its copy can go now
    source_back: bool


@dataclass(frozen=True)
class EvacuatedGuest:
    migration_id: int
    instance_id: str
    remove: bool  # False: the server lives on that host again; only the row is closed


@dataclass(frozen=True)
class EvacuatedGuests:
    host: str
    guests: list[EvacuatedGuest]


@dataclass(frozen=True)
class EvacuationCleaned:
    """The old copy is gone from `host`: forget its ledger entries there, and the
    Migration row becomes `completed` (Nova's _destroy_evacuated_instances)."""

    host: str
    migration_id: int
    instance_id: str

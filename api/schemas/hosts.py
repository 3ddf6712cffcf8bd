"""Hypervisor hosts (admin)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, StringConstraints, model_validator

from api.schemas.common import Request

# --- hosts -------------------------------------------------------------------------

class HostUsage(BaseModel):
    vcpus: int
    ram_mb: int
    disk_gb: int


class HostPublic(BaseModel):
    name: str
    hostname: str
    vcpus: int
    ram_mb: int
    disk_gb: int
    traits: list[str]
    virt_type: str
    libvirt_uri: str  # `virsh -c <libvirt_uri>` reaches the host's libvirt
    migration_address: str  # the host's underlay address (disk copies between hosts)
    migration_uri: str  # what a peer's libvirtd dials for a peer-to-peer migration
    used: HostUsage
    instances: int
    alive: bool  # = state == "up"
    state: Literal["up", "down"]  # Nova's: a fresh heartbeat and not forced down
    last_seen: datetime | None  # the newest heartbeat Temporal remembers
    status: Literal["enabled", "disabled"]
    disabled_reason: str | None
    forced_down: bool
    updated_at: datetime | None  # the last change of status or forced_down


class HostList(BaseModel):
    hosts: list[HostPublic]


Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]


class HostUpdate(Request):
    """Nova's PUT /os-services (2.53): at least one of status and forced_down; a reason
    only together with status disabled."""

    status: Literal["enabled", "disabled"] | None = None
    disabled_reason: Reason | None = None
    forced_down: bool | None = None

    @model_validator(mode="after")
    def consistent(self) -> HostUpdate:
        if self.status is None and self.forced_down is None:
            raise ValueError("give status (enabled|disabled), forced_down, or both")
        if self.disabled_reason is not None and self.status != "disabled":
            raise ValueError("disabled_reason is only allowed with status disabled")
        return self

"""Hypervisor hosts (admin)."""

from __future__ import annotations

from pydantic import (
    BaseModel,
)

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
    used: HostUsage
    instances: int
    alive: bool


class HostList(BaseModel):
    hosts: list[HostPublic]

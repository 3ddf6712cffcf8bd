"""Flavors and their access lists (Nova's names)."""

from __future__ import annotations

from pydantic import (
    BaseModel,
    Field,
)

from api.schemas.common import MetaKey, MetaValue, Name, Ref, Request
from vmflow.models import Flavor

# --- flavors -----------------------------------------------------------------------

class FlavorCreate(Request):
    name: Name
    vcpus: int = Field(ge=1, le=1024)
    ram: int = Field(ge=1, description="MiB")
    disk: int = Field(ge=0, description="GB")
    is_public: bool = True
    extra_specs: dict[MetaKey, MetaValue] = Field(default_factory=dict)


class FlavorPublic(BaseModel):
    id: str
    name: str
    vcpus: int
    ram: int  # MiB, as Nova
    disk: int  # GB
    is_public: bool
    extra_specs: dict[str, str]

    @classmethod
    def of(cls, f: Flavor) -> FlavorPublic:
        return cls(id=f.id, name=f.name, vcpus=f.vcpus, ram=f.ram_mb, disk=f.disk_gb,
                   is_public=f.is_public, extra_specs=dict(f.extra_specs or {}))


class FlavorList(BaseModel):
    flavors: list[FlavorPublic]


# --- access lists (Nova's os-flavor-access) -----------------------------------------


class FlavorAccessAdd(Request):
    project: Ref  # a project id or its unique name


class FlavorAccessPublic(BaseModel):
    flavor_id: str
    project_id: str


class FlavorAccessList(BaseModel):
    flavor_access: list[FlavorAccessPublic]

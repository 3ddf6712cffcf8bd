"""Request and response models.

Requests are strict (no coercion: `{"name": 5}` is refused, not turned into "5") and
refuse unknown keys, so a typo is an error instead of being silently ignored.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, overload

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from vmflow import states
from vmflow.models import Flavor, Image, ImageMember, Instance, Keypair, Operation

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
Ref = Name  # an id or a unique name
MetaKey = Annotated[str, StringConstraints(min_length=1, max_length=255)]
MetaValue = Annotated[str, StringConstraints(max_length=255)]


@overload
def utc(dt: datetime) -> datetime: ...
@overload
def utc(dt: None) -> None: ...
def utc(dt: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; everything we store is UTC."""
    if dt is None or dt.tzinfo is not None:
        return dt
    return dt.replace(tzinfo=UTC)


class Request(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


# --- servers -------------------------------------------------------------------------

class ServerCreate(Request):
    name: Name
    image: Ref
    flavor: Ref
    key_name: Name | None = None
    metadata: dict[MetaKey, MetaValue] = Field(default_factory=dict, max_length=128)
    user_data: str | None = Field(default=None, max_length=65535, description="base64")

    @field_validator("user_data")
    @classmethod
    def _base64(cls, v: str | None) -> str | None:
        # as Nova: refuse here rather than fail inside the guest's cloud-init
        if v is not None:
            try:
                base64.b64decode(v, validate=True)
            except binascii.Error:
                raise ValueError("user_data must be base64 encoded") from None
        return v


class ServerPublic(BaseModel):
    id: str
    name: str
    status: str
    vm_state: str
    task_state: str | None
    host: str | None
    image_id: str
    flavor_id: str
    addresses: dict[str, list[dict[str, Any]]]
    locked: bool
    locked_reason: str | None
    fault: str | None
    key_name: str | None
    metadata: dict[str, str]
    project_id: str
    user_id: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, i: Instance) -> ServerPublic:
        return cls(
            id=i.id, name=i.name, status=states.status(i.vm_state, i.task_state),
            vm_state=i.vm_state, task_state=i.task_state, host=i.host, image_id=i.image_id,
            flavor_id=i.flavor_id, addresses={}, locked=i.locked,
            locked_reason=i.locked_reason, fault=i.fault,
            key_name=i.key_name, metadata=dict(i.meta or {}), project_id=i.project_id,
            user_id=i.user_id, created_at=utc(i.created_at), updated_at=utc(i.updated_at),
        )


class ServerList(BaseModel):
    servers: list[ServerPublic]


class OperationBrief(BaseModel):
    id: str
    workflow_id: str
    status: str

    @classmethod
    def of(cls, op: Operation) -> OperationBrief:
        return cls(id=op.id, workflow_id=op.workflow_id, status=op.status)


class ServerAccepted(BaseModel):
    server: ServerPublic
    operation: OperationBrief


class OperationAccepted(BaseModel):
    operation: OperationBrief


class ActionPublic(BaseModel):
    action: str
    request_id: str
    user_id: str
    user: str | None  # the user's name, as Nova's instance actions show it
    start: datetime
    finish: datetime | None
    result: str
    fault: str | None
    workflow_id: str
    operation_id: str


class ActionList(BaseModel):
    actions: list[ActionPublic]


# --- server metadata (Nova's limits: keys 1-255, values up to 255, 128 items) ---------

MAX_METADATA_ITEMS = 128
Metadata = Annotated[dict[MetaKey, MetaValue], Field(max_length=MAX_METADATA_ITEMS)]


class MetadataBody(Request):
    metadata: Metadata


class MetaItemBody(Request):
    meta: dict[MetaKey, MetaValue] = Field(min_length=1, max_length=1)


class MetadataPublic(BaseModel):
    metadata: dict[str, str]


class MetaItemPublic(BaseModel):
    meta: dict[str, str]


# --- keypairs ------------------------------------------------------------------------

KEYPAIR_NAME = re.compile(r"[A-Za-z0-9_. -]{1,255}")


class KeypairCreate(Request):
    name: str = Field(description="1-255 of A-Z a-z 0-9 _ . - and inner spaces (Nova)")
    public_key: str | None = Field(default=None, max_length=16384,
                                   description="import this key; none: generate one")
    type: Literal["ssh"] = "ssh"

    @field_validator("name")
    @classmethod
    def _nova_name(cls, v: str) -> str:
        if not KEYPAIR_NAME.fullmatch(v) or v != v.strip(" "):
            raise ValueError("a keypair name is 1-255 characters of letters, digits, "
                             "'_', '.', '-' and spaces, not starting or ending with a space")
        return v


class KeypairPublic(BaseModel):
    name: str
    public_key: str
    fingerprint: str
    type: str
    user_id: str
    created_at: datetime
    private_key: str | None = None  # only in the answer that generated it

    @classmethod
    def of(cls, k: Keypair, private_key: str | None = None) -> KeypairPublic:
        return cls(name=k.name, public_key=k.public_key, fingerprint=k.fingerprint,
                   type=k.type, user_id=k.user_id, created_at=utc(k.created_at),
                   private_key=private_key)


class KeypairOne(BaseModel):
    keypair: KeypairPublic


class KeypairList(BaseModel):
    keypairs: list[KeypairPublic]


# --- operations ----------------------------------------------------------------------

class OperationPublic(BaseModel):
    id: str
    resource_type: str
    resource_id: str
    action: str
    status: str
    step: str | None
    progress: int | None
    attempt: int | None
    last_error: str | None
    workflow_id: str
    run_id: str | None
    project_id: str
    user_id: str
    request_id: str
    started_at: datetime
    finished_at: datetime | None


# --- images --------------------------------------------------------------------------

DiskFormat = Literal["qcow2", "raw", "aki", "ari", "iso"]
ContainerFormat = Literal["bare", "aki", "ari"]
Visibility = Literal["private", "public", "shared", "community"]
PropertyKey = Annotated[str, StringConstraints(min_length=1, max_length=255)]
PropertyValue = Annotated[str, StringConstraints(max_length=255)] | bool | int


class ImageCreate(Request):
    name: Name
    disk_format: DiskFormat
    container_format: ContainerFormat
    visibility: Visibility = "private"
    properties: dict[PropertyKey, PropertyValue] = Field(default_factory=dict, max_length=128)

    @model_validator(mode="after")
    def _kernel_formats_match(self) -> ImageCreate:
        # Glance: aki/ari are both a disk and a container format, and then both agree
        kinds = {"aki", "ari"}
        if (self.disk_format in kinds or self.container_format in kinds) and (
                self.disk_format != self.container_format):
            raise ValueError("with disk_format or container_format aki or ari, both must "
                             "be the same")
        return self


class ImagePublic(BaseModel):
    id: str
    name: str
    status: str
    disk_format: str
    container_format: str
    size: int | None
    checksum: str | None  # sha256 hex
    visibility: str
    owner: str | None
    properties: dict[str, Any]
    fault: str | None  # why it is in error
    file: str  # where its data is read and written
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, i: Image) -> ImagePublic:
        return cls(
            id=i.id, name=i.name, status=i.status, disk_format=i.disk_format,
            container_format=i.container_format, size=i.size, checksum=i.checksum,
            visibility=i.visibility, owner=i.owner, properties=dict(i.properties or {}),
            fault=i.fault, file=f"/v1/images/{i.id}/file",
            created_at=utc(i.created_at), updated_at=utc(i.updated_at),
        )


class ImageList(BaseModel):
    images: list[ImagePublic]


MemberStatus = Literal["pending", "accepted", "rejected"]


class ImageMemberCreate(Request):
    member: Ref  # a project id (or its unique name)


class ImageMemberUpdate(Request):
    status: MemberStatus


class ImageMemberPublic(BaseModel):
    image_id: str
    member_id: str  # the project
    status: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, m: ImageMember) -> ImageMemberPublic:
        return cls(image_id=m.image_id, member_id=m.member, status=m.status,
                   created_at=utc(m.created_at), updated_at=utc(m.updated_at))


class ImageMemberList(BaseModel):
    members: list[ImageMemberPublic]


# --- flavors -------------------------------------------------------------------------

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


# --- hosts ---------------------------------------------------------------------------

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


# --- identity ------------------------------------------------------------------------

Role = Literal["admin", "member", "reader"]  # vmflow.identity.ROLES


class ProjectCreate(Request):
    name: Name


class ProjectPublic(BaseModel):
    id: str
    name: str
    created_at: datetime


class UserCreate(Request):
    name: Name
    password: str = Field(min_length=8, max_length=1024)
    project: Ref
    role: Role = "member"


class UserPublic(BaseModel):
    id: str
    name: str
    project_id: str
    role: str


class TokenCreate(Request):
    username: Name
    password: str = Field(max_length=1024)
    project: Ref
    expires_in: int | None = Field(default=None, ge=60, description="seconds; none: no expiry")


class TokenPublic(BaseModel):
    token: str
    user_id: str
    project_id: str
    role: str
    expires_at: datetime | None


# --- health --------------------------------------------------------------------------

class Health(BaseModel):
    status: str
    db: bool
    temporal: bool

"""Images and image members (Glance's names)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    Field,
    model_validator,
)

from api.schemas.common import MetaKey, MetaValue, Name, Ref, Request, utc
from vmflow.models import Image, ImageMember

# --- images ------------------------------------------------------------------------

DiskFormat = Literal["qcow2", "raw", "aki", "ari", "iso"]
ContainerFormat = Literal["bare", "aki", "ari"]
Visibility = Literal["private", "public", "shared", "community"]
PropertyKey = MetaKey
PropertyValue = MetaValue | bool | int


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


class ImageUpdate(Request):
    """`vmflow image set`: only what is given changes; properties are merged."""

    name: Name | None = None
    visibility: Visibility | None = None
    properties: dict[PropertyKey, PropertyValue] = Field(default_factory=dict, max_length=128)
    remove_properties: list[PropertyKey] = Field(default_factory=list, max_length=128)


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

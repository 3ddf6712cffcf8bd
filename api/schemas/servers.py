"""Servers, their actions' history and metadata (Nova's names)."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    Field,
    field_validator,
)

from api.schemas.common import MetaKey, MetaValue, Name, OperationBrief, Ref, Request, utc
from vmflow import states
from vmflow.models import Instance

# --- servers -----------------------------------------------------------------------

class SecurityGroupRef(Request):
    name: Ref = Field(description="a group's name or id")


class ServerCreate(Request):
    name: Name
    image: Ref
    flavor: Ref
    key_name: Name | None = None
    metadata: dict[MetaKey, MetaValue] = Field(default_factory=dict, max_length=128)
    user_data: str | None = Field(default=None, max_length=65535, description="base64")
    # Nova's: "auto" | "none" | [{"uuid"[, "fixed_ip"]} | {"port"}] (vmflow.nic_requests
    # reads it); absent: "none" (docs/decisions.md)
    networks: str | list[dict[str, Any]] | None = None
    security_groups: list[SecurityGroupRef] | None = Field(default=None, min_length=1,
                                                           max_length=16)

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
    def of(cls, i: Instance, addresses: dict[str, list[dict[str, Any]]] | None = None
           ) -> ServerPublic:
        return cls(
            id=i.id, name=i.name, status=states.status(i.vm_state, i.task_state),
            vm_state=i.vm_state, task_state=i.task_state, host=i.host, image_id=i.image_id,
            flavor_id=i.flavor_id, addresses=addresses or {}, locked=i.locked,
            locked_reason=i.locked_reason, fault=i.fault,
            key_name=i.key_name, metadata=dict(i.meta or {}), project_id=i.project_id,
            user_id=i.user_id, created_at=utc(i.created_at), updated_at=utc(i.updated_at),
        )


class ServerList(BaseModel):
    servers: list[ServerPublic]
    # the next page's URL (the same query, marker = this page's last id); None: the last
    next: str | None = None


class ServerAccepted(BaseModel):
    server: ServerPublic
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




# --- server metadata (Nova's limits: keys 1-255, values up to 255, 128 items) ------

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

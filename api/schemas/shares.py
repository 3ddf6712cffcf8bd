"""Shares and their actions (Manila's names)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from api.schemas.common import Name, OperationBrief, Ref, Request, utc
from vmflow.models import Share, ShareAccessRule

# --- shares ------------------------------------------------------------------------

class ShareCreate(Request):
    share_proto: str = Field(description="NFS (any case)")
    size: int | None = Field(default=None, ge=1, description="GiB; default: the snapshot's")
    name: Name
    share_type: Ref | None = Field(default=None, description="id or name; default: default")
    snapshot_id: Ref | None = None


class SharePublic(BaseModel):
    id: str
    name: str
    status: str
    size: int
    share_proto: str
    export_locations: list[str]
    share_type: str
    share_type_name: str | None
    access_rules_status: str
    project_id: str
    user_id: str
    snapshot_id: str | None
    host: str | None  # admins only (Manila)
    fault: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, s: Share, type_name: str | None, admin: bool) -> SharePublic:
        return cls(
            id=s.id, name=s.name, status=s.status, size=s.size_gb, share_proto=s.share_proto,
            export_locations=list(s.export_locations or []), share_type=s.share_type_id,
            share_type_name=type_name, access_rules_status=s.access_rules_status,
            project_id=s.project_id, user_id=s.user_id, snapshot_id=s.snapshot_id,
            host=s.host if admin else None, fault=s.fault, created_at=utc(s.created_at),
            updated_at=utc(s.updated_at))


class ShareList(BaseModel):
    shares: list[SharePublic]


class ShareAccepted(BaseModel):
    share: SharePublic
    operation: OperationBrief




# --- actions (POST /v1/shares/{id}/action, one key) --------------------------------

class NoArgs(Request):
    pass


class AllowAccessArgs(Request):
    # checked by vmflow.access_rules in the route, for Manila's 400 with a clear message
    access_type: str
    access_to: str = Field(max_length=1024)
    access_level: str = "rw"


class DenyAccessArgs(Request):
    access_id: Ref


class ResizeArgs(Request):
    new_size: int = Field(ge=1)


class ResetStatusArgs(Request):
    status: str


ACTION_ARGS: dict[str, type[Request]] = {
    "allow_access": AllowAccessArgs,
    "deny_access": DenyAccessArgs,
    "extend": ResizeArgs,
    "shrink": ResizeArgs,
    "reset_status": ResetStatusArgs,
    "force_delete": NoArgs,
}


class AccessPublic(BaseModel):
    id: str
    share_id: str
    access_type: str
    access_to: str
    access_level: str
    state: str
    fault: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, r: ShareAccessRule) -> AccessPublic:
        return cls(id=r.id, share_id=r.share_id, access_type=r.access_type,
                   access_to=r.access_to, access_level=r.access_level, state=r.state,
                   fault=r.fault, created_at=utc(r.created_at), updated_at=utc(r.updated_at))


class AccessOne(BaseModel):
    access: AccessPublic


class AccessList(BaseModel):
    access_list: list[AccessPublic]

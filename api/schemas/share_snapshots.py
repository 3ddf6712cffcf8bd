"""Share snapshots (Manila's names)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from api.schemas.common import Name, OperationBrief, Ref, Request, utc
from vmflow.models import ShareSnapshot

# --- snapshots ---------------------------------------------------------------------

class SnapshotCreate(Request):
    share_id: Ref
    name: Name


class SnapshotPublic(BaseModel):
    id: str
    share_id: str
    name: str
    size: int
    status: str
    fault: str | None
    project_id: str
    user_id: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, s: ShareSnapshot) -> SnapshotPublic:
        return cls(id=s.id, share_id=s.share_id, name=s.name, size=s.size_gb, status=s.status,
                   fault=s.fault, project_id=s.project_id, user_id=s.user_id,
                   created_at=utc(s.created_at), updated_at=utc(s.updated_at))


class SnapshotList(BaseModel):
    snapshots: list[SnapshotPublic]


class SnapshotAccepted(BaseModel):
    snapshot: SnapshotPublic
    operation: OperationBrief

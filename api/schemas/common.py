"""What every request and response model shares: strict requests (no coercion,
unknown keys refused), UTC times, the name types, an accepted operation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, overload

from pydantic import BaseModel, ConfigDict, StringConstraints

from vmflow.models import Operation

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


SpecKey = Annotated[str, StringConstraints(min_length=1, max_length=255)]
SpecValue = Annotated[str, StringConstraints(max_length=255)]
# extra specs Manila reads as booleans ("True"/"False", or "<is> True")
BOOLEAN_SPECS = frozenset({"snapshot_support", "driver_handles_share_servers",
                           "create_share_from_snapshot_support"})


def spec_true(value: str | None) -> bool:
    return (value or "").replace("<is>", "").strip().lower() == "true"


class OperationBrief(BaseModel):
    id: str
    workflow_id: str
    status: str

    @classmethod
    def of(cls, op: Operation) -> OperationBrief:
        return cls(id=op.id, workflow_id=op.workflow_id, status=op.status)


class OperationAccepted(BaseModel):
    operation: OperationBrief

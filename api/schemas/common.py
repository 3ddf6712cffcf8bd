"""What every request and response model shares: strict requests (no coercion,
unknown keys refused), UTC times, the name types, an accepted operation.

User text is refused or kept exactly as sent, never rewritten (docs/decisions.md,
"Hostile names and metadata"): names and keys refuse control characters and lone
surrogates (PostgreSQL cannot store NUL, UTF-8 cannot encode a surrogate), names also
leading or trailing whitespace (Nova); values may hold tabs and line breaks."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, overload

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

from vmflow.models import Operation

CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")  # C0, DEL, C1, surrogates
_VALUE_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def printable(v: str) -> str:
    """A key or a name: no control character (NUL, line breaks, escapes), no surrogate."""
    if CONTROL.search(v):
        raise ValueError("control characters (and unpaired surrogates) are not allowed")
    return v


def text_value(v: str) -> str:
    """A value: as `printable`, but tabs and line breaks are kept."""
    if _VALUE_CONTROL.search(v):
        raise ValueError("control characters other than tab, CR and LF (and unpaired "
                         "surrogates) are not allowed")
    return v


def _display_name(v: str) -> str:
    printable(v)
    if v != v.strip():  # Nova: refused rather than silently trimmed
        raise ValueError("a name may not start or end with whitespace")
    return v


Name = Annotated[str, StringConstraints(min_length=1, max_length=255),
                 AfterValidator(_display_name)]
# an id or a unique name: only looked up, so surrounding whitespace is trimmed
Ref = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255),
                AfterValidator(printable)]
MetaKey = Annotated[str, StringConstraints(min_length=1, max_length=255),
                    AfterValidator(printable)]
MetaValue = Annotated[str, StringConstraints(max_length=255), AfterValidator(text_value)]


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

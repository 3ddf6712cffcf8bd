"""Share types and their extra specs (Manila's names)."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from api.schemas.common import BOOLEAN_SPECS, Name, Request, SpecKey, SpecValue
from vmflow.models import ShareType

# --- share types -------------------------------------------------------------------

class ShareTypeCreate(Request):
    name: Name
    extra_specs: dict[SpecKey, SpecValue] = Field(default_factory=dict, max_length=64)
    is_public: bool = True

    @field_validator("extra_specs")
    @classmethod
    def _booleans(cls, v: dict[str, str]) -> dict[str, str]:
        for key in BOOLEAN_SPECS & set(v):
            if v[key].replace("<is>", "").strip().lower() not in ("true", "false"):
                raise ValueError(f"extra spec {key} must be True or False")
        return v


class ShareTypePublic(BaseModel):
    id: str
    name: str
    extra_specs: dict[str, str]
    is_public: bool

    @classmethod
    def of(cls, t: ShareType) -> ShareTypePublic:
        return cls(id=t.id, name=t.name, extra_specs=dict(t.extra_specs or {}),
                   is_public=t.is_public)


class ShareTypeList(BaseModel):
    share_types: list[ShareTypePublic]

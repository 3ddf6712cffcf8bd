"""Projects, users and tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import (
    BaseModel,
    Field,
)

from api.schemas.common import Name, Ref, Request

# --- identity ----------------------------------------------------------------------

Role = Literal["admin", "member", "reader"]  # vmflow.identity.ROLES


class ProjectCreate(Request):
    name: Name


class ProjectPublic(BaseModel):
    id: str
    name: str
    created_at: datetime


class ProjectList(BaseModel):
    projects: list[ProjectPublic]


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


class UserList(BaseModel):
    users: list[UserPublic]  # one entry per membership


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

"""Keypairs (Nova's os-keypairs)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import (
    BaseModel,
    Field,
    field_validator,
)

from api.schemas.common import Request, text_value, utc
from vmflow.models import Keypair

# --- keypairs ----------------------------------------------------------------------

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
        if v in (".", ".."):  # a URL path segment clients resolve away: unaddressable
            raise ValueError("a keypair name may not be '.' or '..'")
        return v

    @field_validator("public_key")
    @classmethod
    def _printable(cls, v: str | None) -> str | None:
        # one .pub line (a trailing line break is dropped): no NUL, no escapes
        return None if v is None else text_value(v)


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

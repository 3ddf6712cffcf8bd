"""Quota sets."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from api.schemas.common import Request

# --- quotas ------------------------------------------------------------------------

Limit = Annotated[int, Field(ge=-1, description="-1: unlimited")]


class QuotaUpdate(Request):
    shares: Limit | None = None
    gigabytes: Limit | None = None
    snapshots: Limit | None = None
    snapshot_gigabytes: Limit | None = None
    instances: Limit | None = None
    cores: Limit | None = None
    ram: Limit | None = None  # MiB
    floating_ips: Limit | None = None


class QuotaUsage(BaseModel):
    limit: int
    in_use: int
    reserved: int = 0  # gigabytes extends in flight will add (Manila's reservations)


class QuotaSet(BaseModel):
    id: str  # the project
    shares: QuotaUsage
    gigabytes: QuotaUsage
    snapshots: QuotaUsage
    snapshot_gigabytes: QuotaUsage
    instances: QuotaUsage  # Nova's; servers not deleted
    cores: QuotaUsage
    ram: QuotaUsage  # MiB
    floating_ips: QuotaUsage  # Neutron's


class QuotaSetOne(BaseModel):
    quota_set: QuotaSet

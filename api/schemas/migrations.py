"""Migrations (Nova's os-migrations and server migrations, with Nova's field names)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from api.schemas.common import Request


class MigrationPublic(BaseModel):
    id: int
    uuid: str
    server_uuid: str  # Nova's instance_uuid
    migration_type: str  # resize | migration | live-migration | evacuation
    status: str
    source_compute: str | None
    dest_compute: str | None
    source_node: str | None  # one node per host in vmflow: the host
    dest_node: str | None
    old_flavor_id: str | None
    new_flavor_id: str | None
    memory_total_bytes: int | None
    memory_processed_bytes: int | None
    memory_remaining_bytes: int | None
    disk_total_bytes: int | None
    disk_processed_bytes: int | None
    disk_remaining_bytes: int | None
    progress: int | None  # percent of memory and disk copied (live: from the running job)
    project_id: str
    user_id: str
    operation_id: str | None
    created_at: datetime
    updated_at: datetime


class MigrationList(BaseModel):
    migrations: list[MigrationPublic]


class MigrationAction(Request):
    """POST .../migrations/{id}/action: exactly {"force_complete": null}."""

    force_complete: None

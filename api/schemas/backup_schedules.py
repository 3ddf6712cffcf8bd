"""Backup schedules of a server: the request and response models."""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import BaseModel, Field, field_validator, model_validator

from api.schemas.common import Request, utc
from vmflow import backup_schedules
from vmflow.models import BackupSchedule
from vmflow.names import backup_schedule_id

MAX_ROTATION = 1000
# printable, no leading or trailing space: it becomes part of image names
BACKUP_TYPE = re.compile(r"[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?")


class BackupScheduleCreate(Request):
    every: str | None = Field(default=None, max_length=16,
                              description='N minutes, hours or days: "30m", "6h", "1d"')
    cron: str | None = Field(default=None, max_length=255,
                             description='5 fields, UTC: "0 3 * * *"')
    backup_type: str = Field(min_length=1, max_length=255, description='e.g. "daily"')
    rotation: int = Field(ge=1, le=MAX_ROTATION,
                          description="keep this many backups of this type")

    @field_validator("backup_type")
    @classmethod
    def _printable(cls, v: str) -> str:
        if not BACKUP_TYPE.fullmatch(v):
            raise ValueError("backup_type is printable text without leading or trailing "
                             "spaces")
        return v

    @model_validator(mode="after")
    def _one_timetable(self) -> BackupScheduleCreate:
        if (self.every is None) == (self.cron is None):
            raise ValueError("give exactly one of every and cron")
        try:
            if self.every is not None:
                backup_schedules.parse_every(self.every)
            else:
                assert self.cron is not None
                self.cron = backup_schedules.check_cron(self.cron)
        except backup_schedules.InvalidSpec as e:
            raise ValueError(str(e)) from None
        return self


class BackupSchedulePublic(BaseModel):
    id: str
    server_id: str
    project_id: str
    user_id: str
    every: str | None
    cron: str | None
    backup_type: str
    rotation: int
    paused: bool
    created_at: datetime
    schedule_id: str  # the Temporal Schedule (Web UI: Schedules)
    # from Temporal, on show (None when it cannot be asked)
    next_run_at: datetime | None = None
    last_run_at: datetime | None = None
    running: int | None = None  # ticks running now (0 or 1: overlap SKIP)

    @classmethod
    def of(cls, row: BackupSchedule) -> BackupSchedulePublic:
        return cls(id=row.id, server_id=row.instance_id, project_id=row.project_id,
                   user_id=row.user_id, every=row.every, cron=row.cron,
                   backup_type=row.backup_type, rotation=row.rotation, paused=row.paused,
                   created_at=utc(row.created_at),
                   schedule_id=backup_schedule_id(row.instance_id, row.id))


class BackupScheduleList(BaseModel):
    backup_schedules: list[BackupSchedulePublic]

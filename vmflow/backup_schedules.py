"""Backup schedules on Temporal Schedules: the timetable (`every` or `cron`), checked
strictly, and the one Temporal Schedule per BackupSchedule row.

A schedule with id `backup-<instance>-<schedule>` starts the ScheduledBackup workflow
(workflows/background/scheduled_backup.py) on `control` at each tick, with overlap SKIP: while
one tick's backup still runs, the next is skipped. Temporal appends the tick's time
to the workflow id, so the tick cannot hold `instance-<id>` itself; its first
activity starts SnapshotInstance there (vmflow.backups.start_snapshot).

Used by the API (create, pause, trigger, delete) and by the control activities (a
deleted instance's schedules go with it).
"""

from __future__ import annotations

import re
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleDescription,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from vmflow.contracts.snapshots import ScheduledBackupRequest
from vmflow.models import BackupSchedule
from vmflow.names import (
    CONTROL_QUEUE,
    SA_OPERATION,
    SA_PROJECT,
    SA_RESOURCE,
    backup_schedule_id,
    instance_workflow_id,
)
from vmflow.operations import RPC_TIMEOUT

WORKFLOW = "ScheduledBackup"
# a tick missed while Temporal was down still runs if it is at most this late (once:
# overlap SKIP); an older one is dropped rather than run at a surprising time
CATCHUP_WINDOW = timedelta(hours=1)

# ---- the timetable ----------------------------------------------------------------------

EVERY_RE = re.compile(r"([1-9][0-9]{0,5})([mhd])")
UNIT = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}
MAX_EVERY = timedelta(days=366)


class InvalidSpec(ValueError):
    """A timetable vmflow refuses (the API answers 400)."""


def parse_every(text: str) -> timedelta:
    """"30m", "6h", "1d": a positive whole number of minutes, hours or days, at most
    366 days."""
    m = EVERY_RE.fullmatch(text)
    if m is None:
        raise InvalidSpec(f"every {text!r} is not N followed by m, h or d (e.g. 30m, 6h, 1d)")
    interval = int(m.group(1)) * UNIT[m.group(2)]
    if interval > MAX_EVERY:
        raise InvalidSpec(f"every {text!r} is longer than {MAX_EVERY.days} days")
    return interval


MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]


class _Field:
    def __init__(self, name: str, low: int, high: int, names: list[str] | None = None):
        self.name, self.low, self.high = name, low, high
        self.names = {n: low + i for i, n in enumerate(names or [])}

    def value(self, text: str) -> int:
        if text.isdigit() and len(text) <= 2:
            v = int(text)
        elif text.upper() in self.names:
            v = self.names[text.upper()]
        else:
            raise InvalidSpec(f"{self.name} {text!r} is not a number"
                              + (" or a name" if self.names else ""))
        if not self.low <= v <= self.high:
            raise InvalidSpec(f"{self.name} {v} is outside {self.low}-{self.high}")
        return v

    def check(self, field: str) -> None:
        """A comma list of `*`, `*/S`, `A`, `A-B` or `A-B/S` (names allowed for month
        and day of week)."""
        for item in field.split(","):
            base, slash, step = item.partition("/")
            if slash:
                if not step.isdigit() or len(step) > 2 or not 1 <= int(step) <= self.high:
                    raise InvalidSpec(f"{self.name} step {step!r} is not 1-{self.high}")
                if base != "*" and "-" not in base:
                    raise InvalidSpec(f"{self.name} {item!r}: a step needs * or a range")
            if base == "*":
                continue
            first, dash, last = base.partition("-")
            a = self.value(first)
            if dash and a > self.value(last):
                raise InvalidSpec(f"{self.name} range {base!r} runs backwards")


CRON_FIELDS = [
    _Field("minute", 0, 59), _Field("hour", 0, 23), _Field("day of month", 1, 31),
    _Field("month", 1, 12, MONTHS), _Field("day of week", 0, 6, DAYS),
]


def check_cron(text: str) -> str:
    """A standard 5-field cron line (minute hour day-of-month month day-of-week, UTC);
    no @macros, seconds, years, L, W, # or ?, and not both day fields restricted.
    Returns it with single spaces."""
    fields = text.split()
    if len(fields) != len(CRON_FIELDS):
        raise InvalidSpec(f"cron {text!r} has {len(fields)} fields; it needs 5: "
                          "minute hour day-of-month month day-of-week")
    try:
        for spec, field in zip(CRON_FIELDS, fields, strict=True):
            spec.check(field)
    except InvalidSpec as e:
        raise InvalidSpec(f"cron {text!r}: {e}") from None
    if fields[2] != "*" and fields[4] != "*":
        # cron runs when either matches; a Temporal Schedule only when both do
        raise InvalidSpec(f"cron {text!r} restricts both day of month and day of week, "
                          "which cron and Temporal read differently; restrict one of them")
    return " ".join(fields)


def spec_of(every: str | None, cron: str | None) -> ScheduleSpec:
    if (every is None) == (cron is None):
        raise InvalidSpec("give exactly one of every and cron")
    if every is not None:
        return ScheduleSpec(intervals=[ScheduleIntervalSpec(every=parse_every(every))])
    assert cron is not None
    return ScheduleSpec(cron_expressions=[check_cron(cron)])


# ---- the Temporal Schedule -------------------------------------------------------------


def schedule_id(row: BackupSchedule) -> str:
    return backup_schedule_id(row.instance_id, row.id)


def _attributes(row: BackupSchedule, operation: str | None = None) -> TypedSearchAttributes:
    pairs = [SearchAttributePair(SA_RESOURCE, instance_workflow_id(row.instance_id)),
             SearchAttributePair(SA_PROJECT, row.project_id)]
    if operation:
        pairs.append(SearchAttributePair(SA_OPERATION, operation))
    return TypedSearchAttributes(pairs)


def temporal_schedule(row: BackupSchedule) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            WORKFLOW,
            ScheduledBackupRequest(row.instance_id, row.id, row.backup_type, row.rotation),
            id=schedule_id(row),
            task_queue=CONTROL_QUEUE,
            typed_search_attributes=_attributes(row, "scheduled-backup"),
            memo={"backup_schedule_id": row.id},
            static_summary=f"scheduled backup of instance {row.instance_id}",  # ids only
        ),
        spec=spec_of(row.every, row.cron),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP,
                              catchup_window=CATCHUP_WINDOW),
        state=ScheduleState(paused=row.paused),
    )


async def create(client: Client, row: BackupSchedule) -> None:
    await client.create_schedule(schedule_id(row), temporal_schedule(row),
                                 search_attributes=_attributes(row),
                                 memo={"backup_schedule_id": row.id},
                                 rpc_timeout=RPC_TIMEOUT)


async def describe(client: Client, row: BackupSchedule) -> ScheduleDescription | None:
    """None when Temporal has no such schedule."""
    try:
        return await client.get_schedule_handle(schedule_id(row)).describe(
            rpc_timeout=RPC_TIMEOUT)
    except RPCError as e:
        if e.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


async def set_paused(client: Client, row: BackupSchedule, paused: bool, note: str) -> None:
    handle = client.get_schedule_handle(schedule_id(row))
    if paused:
        await handle.pause(note=note, rpc_timeout=RPC_TIMEOUT)
    else:
        await handle.unpause(note=note, rpc_timeout=RPC_TIMEOUT)


async def trigger(client: Client, row: BackupSchedule) -> None:
    """A tick now, paused or not; overlap SKIP still applies."""
    await client.get_schedule_handle(schedule_id(row)).trigger(rpc_timeout=RPC_TIMEOUT)


async def remove(client: Client, instance_id: str, schedule: str) -> bool:
    """Delete the Temporal Schedule; False if it was already gone (idempotent)."""
    try:
        await client.get_schedule_handle(backup_schedule_id(instance_id, schedule)).delete(
            rpc_timeout=RPC_TIMEOUT)
    except RPCError as e:
        if e.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True

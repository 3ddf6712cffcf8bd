"""What the API fuzzer compares around each request: the whole database (every row of
every table, so row counts, server metadata and share state included) and, at the end,
which workflows started or closed while a rejected request was being handled."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import SQLModel
from temporalio.client import Client

from tests.api.conftest import session

# a schedule's own runs start whenever its clock says, whatever request is in flight
SCHEDULED_BY = "TemporalScheduledById"


def db_state() -> dict[str, frozenset[str]]:
    """Every row of every table."""
    with session() as s:
        conn = s.connection()
        return {name: frozenset(repr(tuple(row)) for row in conn.execute(table.select()))
                for name, table in SQLModel.metadata.tables.items()}


def changes(before: dict[str, frozenset[str]], after: dict[str, frozenset[str]],
            ignore: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """Per table (but those in `ignore`): how many rows, and which rows went or came."""
    out = []
    for name in sorted((before.keys() | after.keys()) - ignore):
        old, new = before.get(name, frozenset()), after.get(name, frozenset())
        if old != new:
            out.append(f"{name} ({len(old)} -> {len(new)} rows): gone {list(old - new)[:2]!r}"
                       f", new {list(new - old)[:2]!r}")
    return out


@dataclass(frozen=True)
class Window:
    """The time a rejected request was in the app."""
    start: datetime
    end: datetime
    what: str


async def workflow_events(client: Client) -> list[tuple[datetime, str]]:
    """(start or close time, description) of every workflow not started by a schedule."""
    events: list[tuple[datetime, str]] = []
    async for wf in client.list_workflows():
        if SCHEDULED_BY in (wf.search_attributes or {}):
            continue
        events.append((wf.start_time, f"started {wf.id}"))
        if wf.close_time is not None:
            events.append((wf.close_time, f"closed {wf.id} ({wf.status})"))
    return events


def inside(windows: list[Window], events: list[tuple[datetime, str]]) -> list[str]:
    return [f"{what} while {w.what} was refused" for at, what in events for w in windows
            if w.start <= at <= w.end]

"""Migrations (admin): Nova's server migrations (in-progress live migrations of one
server, abort, force-complete) and os-migrations (every type, filtered).

Progress of a running live migration is read where it is: the source's migration step
heartbeats the job's stats (activities/hypervisor/migrate.py), and Temporal keeps the
newest heartbeat of the pending activity, which describe() returns. The Migration row
gets the numbers when the step ends; nothing writes the database every second.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlmodel import Session, col, or_, select
from temporalio.client import Client, WorkflowExecutionDescription

from api.auth import AuthContext
from api.errors import BadRequest, Conflict, NotFound, ServiceUnavailable
from api.schemas.common import utc
from api.schemas.migrations import MigrationPublic
from api.services.operations import claim_key, describe_running, find_idempotent, forget_key
from vmflow.contracts.activity_names import HostActs
from vmflow.contracts.migrations import (
    ABORT_SIGNAL,
    FORCE_COMPLETE_SIGNAL,
    LiveMigrateRequest,
    MigrationProgress,
)
from vmflow.models import Host, Instance, Migration

log = logging.getLogger(__name__)

LIVE = "live-migration"
IN_PROGRESS = frozenset({"queued", "preparing", "running", "post-migrating"})
MIGRATION_TYPES = frozenset({"resize", "migration", "live-migration", "evacuation"})


# --- the action's input ----------------------------------------------------------------

def live_migrate_input(session: Session, inst: Instance, host: str | None,
                       block_migration: bool | str) -> Callable[[str], LiveMigrateRequest]:
    """os-migrateLive's arguments checked before anything changes (400): a named host
    must be registered and not the server's own; block_migration false would need
    instance storage shared by the hosts, which vmflow hosts never have."""
    if block_migration is False:
        raise BadRequest("block_migration false needs shared instance storage; vmflow hosts "
                         "keep instance disks on their own storage: use true or auto",
                         type="InvalidSharedStorage")
    if host is not None:
        if session.get(Host, host) is None:
            raise BadRequest(f"host {host} is not a registered host", type="ComputeHostNotFound")
        if host == inst.host:
            raise BadRequest(f"server {inst.id} already runs on host {host}",
                             type="InvalidHypervisorHost")
    return lambda op_id: LiveMigrateRequest(inst.id, op_id, host, True)


# --- reading ---------------------------------------------------------------------------

def view(m: Migration, live: MigrationProgress | None = None) -> MigrationPublic:
    p = live
    pct = p.percent if p else _percent(m)
    return MigrationPublic(
        id=m.id or 0, uuid=m.uuid, server_uuid=m.instance_id, migration_type=m.migration_type,
        status=m.status, source_compute=m.source_host, dest_compute=m.dest_host,
        source_node=m.source_host, dest_node=m.dest_host, old_flavor_id=m.old_flavor_id,
        new_flavor_id=m.new_flavor_id,
        memory_total_bytes=p.memory_total if p else m.memory_total,
        memory_processed_bytes=p.memory_processed if p else m.memory_processed,
        memory_remaining_bytes=p.memory_remaining if p else m.memory_remaining,
        disk_total_bytes=p.disk_total if p else m.disk_total,
        disk_processed_bytes=p.disk_processed if p else m.disk_processed,
        disk_remaining_bytes=p.disk_remaining if p else m.disk_remaining,
        progress=pct, project_id=m.project_id, user_id=m.user_id, operation_id=m.operation_id,
        created_at=utc(m.created_at), updated_at=utc(m.updated_at))


def _percent(m: Migration) -> int | None:
    if m.status == "completed":
        return 100
    total = (m.memory_total or 0) + (m.disk_total or 0)
    done = (m.memory_processed or 0) + (m.disk_processed or 0)
    return min(99, done * 100 // total) if total else None


async def heartbeat_progress(client: Client, desc: WorkflowExecutionDescription
                             ) -> MigrationProgress | None:
    """The newest progress the running migration step heartbeated, if any."""
    for act in desc.raw_description.pending_activities:
        if act.activity_type.name != HostActs.LIVE_MIGRATE or not act.heartbeat_details.payloads:
            continue
        try:
            values = await client.data_converter.decode(act.heartbeat_details.payloads)
        except Exception as e:  # an older step's details: no progress rather than an error
            log.debug("heartbeat details of %s unreadable: %s", desc.id, e)
            return None
        if values and isinstance(values[0], dict):
            known = {k: int(v) for k, v in values[0].items()
                     if k in MigrationProgress.__dataclass_fields__ and isinstance(v, int)}
            return MigrationProgress(**known)
    return None


async def live_view(client: Client | None, m: Migration) -> MigrationPublic:
    """A running live migration with the progress its step reports now."""
    if client is None or m.migration_type != LIVE or m.status != "running":
        return view(m)
    desc = await describe_running(client, m.instance_id)
    return view(m, await heartbeat_progress(client, desc) if desc else None)


def of_server(session: Session, inst: Instance) -> list[Migration]:
    """The server's live migrations in progress (Nova's GET /servers/{id}/migrations)."""
    return list(session.exec(
        select(Migration).where(Migration.instance_id == inst.id,
                                Migration.migration_type == LIVE,
                                col(Migration.status).in_(IN_PROGRESS))
        .order_by(col(Migration.id))))


def get_of_server(session: Session, inst: Instance, migration_id: int,
                  in_progress: bool = True) -> Migration:
    """A migration of this server (404 otherwise; Nova's show: only while in progress)."""
    m = session.get(Migration, migration_id)
    if m is None or m.instance_id != inst.id or (in_progress and m.status not in IN_PROGRESS):
        raise NotFound(f"migration {migration_id} of server {inst.id} not found")
    return m


def listed(session: Session, host: str | None, status: str | None,
           instance_uuid: str | None, migration_type: str | None,
           limit: int) -> list[Migration]:
    if migration_type is not None and migration_type not in MIGRATION_TYPES:
        raise BadRequest(f"migration_type must be one of {', '.join(sorted(MIGRATION_TYPES))}",
                         type="ValidationError")
    stmt = select(Migration)
    if host is not None:
        stmt = stmt.where(or_(Migration.source_host == host, Migration.dest_host == host))
    if status is not None:
        stmt = stmt.where(Migration.status == status)
    if instance_uuid is not None:
        stmt = stmt.where(Migration.instance_id == instance_uuid)
    if migration_type is not None:
        stmt = stmt.where(Migration.migration_type == migration_type)
    return list(session.exec(stmt.order_by(col(Migration.id).desc()).limit(limit)))


# --- abort and force-complete ----------------------------------------------------------

async def signal(client: Client | None, session: Session, inst: Instance, migration_id: int,
                 name: str) -> Migration:
    """Send the migration's workflow `abort` or `force_complete`: the migration must be
    a live one (400) that is in progress (409; force-complete: running, 409), and its
    workflow must be the one holding the server now (409)."""
    m = get_of_server(session, inst, migration_id, in_progress=False)
    if m.migration_type != LIVE:
        raise BadRequest(f"migration {migration_id} is a {m.migration_type}, not a live "
                         "migration", type="InvalidMigrationState")
    wanted = IN_PROGRESS if name == ABORT_SIGNAL else {"running"}
    if m.status not in wanted:
        raise Conflict(f"migration {migration_id} is {m.status}; "
                       f"{'abort' if name == ABORT_SIGNAL else 'force-complete'} needs it "
                       f"{' or '.join(sorted(wanted))}", type="InvalidMigrationState")
    if client is None:
        raise ServiceUnavailable("Temporal is not reachable", type="TemporalUnavailable")
    desc = await describe_running(client, inst.id)
    memo: Any = await desc.memo_value("operation_id", None) if desc else None
    if desc is None or desc.workflow_type != "LiveMigrateInstance" or (
            memo is not None and memo != m.operation_id):
        raise Conflict(f"migration {migration_id} has no running workflow",
                       type="InvalidMigrationState")
    await client.get_workflow_handle(desc.id, run_id=desc.run_id).signal(name)
    return m


async def abort(client: Client | None, session: Session, auth: AuthContext, inst: Instance,
                migration_id: int, idempotency_key: str | None = None) -> Migration:
    return await keyed_signal(client, session, auth, inst, migration_id, ABORT_SIGNAL,
                              idempotency_key)


async def force_complete(client: Client | None, session: Session, auth: AuthContext,
                         inst: Instance, migration_id: int,
                         idempotency_key: str | None = None) -> Migration:
    return await keyed_signal(client, session, auth, inst, migration_id,
                              FORCE_COMPLETE_SIGNAL, idempotency_key)


async def keyed_signal(client: Client | None, session: Session, auth: AuthContext,
                       inst: Instance, migration_id: int, name: str,
                       idempotency_key: str | None) -> Migration:
    """signal(), once per Idempotency-Key: a repeat answers with the migration as it is
    now (an abort that went through: no 409 because it is no longer in progress)."""
    action = "abort" if name == ABORT_SIGNAL else "force-complete"
    resource = f"{inst.id}/{migration_id}"
    if find_idempotent(session, auth, idempotency_key, "migration", action, resource):
        return get_of_server(session, inst, migration_id, in_progress=False)
    claimed = claim_key(session, auth, idempotency_key, "migration", resource, action)
    try:
        return await signal(client, session, inst, migration_id, name)
    except BaseException:
        forget_key(session, claimed)
        raise

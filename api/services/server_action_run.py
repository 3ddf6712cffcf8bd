"""Running one parsed server action after its checks: what `POST /v1/servers/{id}/action`
and Nova's `POST /compute/v2.1/servers/{id}/action` share (each renders the outcome in
its own API's shape). Checks, in order: admin-only actions (403), the lock (409), the
vm_state/task_state (409); then the database change, or the image record and snapshot
workflow, or the action's workflow (its input built first: 400 before anything changes).
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Response
from sqlmodel import Session
from temporalio.client import Client

from api.auth import AuthContext
from api.errors import ServiceUnavailable
from api.services.evacuate import check_evacuate
from api.services.guards import check_lock, check_state, require_admin, user_name
from api.services.operations import start_instance_operation
from api.services.preempt import terminate_running
from api.services.server_actions import (
    DATABASE_ACTIONS,
    ParsedAction,
    database_action,
    workflow_input,
)
from api.services.snapshots import ACTIONS as SNAPSHOTS
from api.services.snapshots import SnapshotAccepted, accept_snapshot
from vmflow.models import Instance, Operation


@dataclass(frozen=True)
class Outcome:
    operation: Operation | None = None  # a workflow action's operation
    snapshot: SnapshotAccepted | None = None  # createImage, createBackup
    # None of both: a database action (lock, unlock, os-resetState), committed


async def run_action(client: Client | None, session: Session, auth: AuthContext,
                     inst: Instance, parsed: ParsedAction, idempotency_key: str | None,
                     response: Response) -> Outcome:
    require_admin(parsed.action, auth)
    check_lock(parsed.action, inst, auth)
    check_state(parsed.action, inst)
    if parsed.action in DATABASE_ACTIONS:
        await database_action(client, session, inst, auth, parsed, idempotency_key)
        return Outcome()
    if client is None:
        raise ServiceUnavailable("Temporal is not reachable", type="TemporalUnavailable")
    if parsed.action in SNAPSHOTS:  # the image record first, then the workflow
        return Outcome(snapshot=await accept_snapshot(client, session, auth, inst, parsed.args,
                                                      idempotency_key, response))
    if parsed.action == "evacuate":  # 400 while its host is up, or for a bad host
        await check_evacuate(client, session, inst, parsed.args.host)
    make_input = workflow_input(session, auth, inst, parsed)  # before anything changes
    if parsed.action == "force-delete":
        await terminate_running(client, session, inst,
                                f"force-delete by {user_name(session, auth)}")
    return Outcome(operation=await start_instance_operation(
        client, session, inst, parsed.action, auth, idempotency_key, make_input))

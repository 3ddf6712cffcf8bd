"""Manila's share actions: resize, force_delete, reset_status, access rules.

The logic behind api/routers/share_actions.py: extend, shrink, force_delete and
reset_status on the share's workflow id, and access allow/deny, which change the rule
rows and signal the share's access reconcile.
"""

from __future__ import annotations

from typing import Any

from fastapi import Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlmodel import Session, col, select
from temporalio.client import Client

from api.auth import AuthContext
from api.errors import BadRequest, Conflict, Forbidden, NotFound, ServiceUnavailable
from api.schemas.shares import ACTION_ARGS, AccessOne, AccessPublic
from api.services.guards import user_name
from api.services.operations import find_idempotent
from api.services.shares import (
    EXTEND_SHARE,
    SHRINK_SHARE,
    check_status,
    get_share,
    quota_error,
    refuse_with_snapshots,
    running_action,
    signal_access_sync,
    start_deleting,
    start_share_operation,
    terminate_running,
)
from vmflow import share_quotas
from vmflow.access_rules import validate
from vmflow.contracts.shares import ShareResizeOp
from vmflow.models import Operation, Share, ShareAccessRule, now
from vmflow.names import share_workflow_id
from vmflow.operations import Claim
from vmflow.settings import get_settings
from vmflow.share_states import RESETTABLE, SHARE_ACTIONS, RuleState, ShareStatus

ADMIN_ONLY = frozenset({"reset_status", "force_delete"})


def parse_action(body: Any) -> tuple[str, Any]:
    """The one action of the body and its validated arguments; 400 otherwise."""
    if not isinstance(body, dict) or len(body) != 1:
        raise BadRequest('the body must be an object with exactly one action key, e.g. '
                         '{"extend": {"new_size": 2}}', type="ValidationError")
    ((key, value),) = body.items()
    model = ACTION_ARGS.get(key)
    if model is None:
        raise BadRequest(f"unknown action {key!r}; known: {', '.join(sorted(ACTION_ARGS))}",
                         type="UnknownAction")
    try:
        return key, model.model_validate({} if value is None else value)
    except ValidationError as e:
        raise RequestValidationError(
            [{**err, "loc": ("body", key, *err["loc"])} for err in e.errors()]) from None


async def run_action(client: Client | None, session: Session, auth: AuthContext,
                     share: Share, action: str, args: Any,
                     idempotency_key: str | None) -> Operation | None:
    """Any action but allow/deny on a share the caller may see: its Operation, or
    None for reset_status (a database change)."""
    if action in ADMIN_ONLY and not auth.is_admin:
        raise Forbidden(f"'{action}' needs role admin; the token has {auth.role}")
    if action == "reset_status":
        await reset_status(client, session, share, auth, args.status, idempotency_key)
        return None
    if client is None:
        raise ServiceUnavailable("Temporal is not reachable", type="TemporalUnavailable")
    if action == "force_delete":
        return await force_delete(client, session, share, auth, idempotency_key)
    return await resize(client, session, share, auth, action, args.new_size, idempotency_key)


async def resize(client: Client, session: Session, share: Share, auth: AuthContext,
                 action: str, new_size: int, idempotency_key: str | None) -> Operation:
    check_status(action, share)
    if action == "extend" and new_size <= share.size_gb:
        raise BadRequest(f"new_size {new_size} must be greater than the share's size "
                         f"{share.size_gb}", type="InvalidInput")
    if action == "shrink" and not 0 < new_size < share.size_gb:
        raise BadRequest(f"new_size {new_size} must be between 0 and the share's size "
                         f"{share.size_gb}", type="InvalidInput")
    if action == "extend":
        try:  # no await until the commit
            share_quotas.check(session, share.project_id, get_settings(),
                               gigabytes=new_size - share.size_gb)
        except share_quotas.QuotaExceeded as e:
            raise quota_error(e) from None
    share.extending_to_gb = new_size if action == "extend" else None
    share.updated_at = now()
    session.add(share)
    host = share.host or get_settings().storage_name
    status = ShareStatus.EXTENDING if action == "extend" else ShareStatus.SHRINKING
    return await start_share_operation(
        client, session, share, action, EXTEND_SHARE if action == "extend" else SHRINK_SHARE,
        auth, idempotency_key, lambda op_id: ShareResizeOp(share.id, op_id, host, new_size),
        claim=Claim(share, "status", status, expect=SHARE_ACTIONS[action]))


async def force_delete(client: Client, session: Session, share: Share, auth: AuthContext,
                       idempotency_key: str | None) -> Operation:
    """From any status: terminate what holds share-<id>, then DeleteShare(force=True)
    with the same id. Snapshots still refuse it, as in Manila."""
    refuse_with_snapshots(session, share)
    await terminate_running(client, session, share, f"force_delete by {user_name(session, auth)}")
    return await start_deleting(client, session, share, auth, idempotency_key, force=True)


async def reset_status(client: Client | None, session: Session, share: Share,
                       auth: AuthContext, status: str, idempotency_key: str | None) -> None:
    """Admin: set the status, audited as a finished Operation (old -> new in last_error).
    Refused while an operation runs: it would set the status again; force_delete ends it."""
    if status not in RESETTABLE:
        raise BadRequest(f"status must be one of {', '.join(sorted(RESETTABLE))}",
                         type="InvalidInput")
    if client is not None:
        running = await running_action(client, share.id)
    else:  # without Temporal, the newest running Operation row answers
        row = session.exec(select(Operation).where(
            Operation.workflow_id == share_workflow_id(share.id),
            Operation.status == "running").order_by(col(Operation.started_at).desc())).first()
        running = row.action if row else None
    if running is not None:
        raise Conflict(f"operation {running} is running on share {share.id}; wait for it to "
                       "finish, or force_delete the share")
    note = f"reset by {user_name(session, auth)} from {share.status} to {status}"
    share.status, share.updated_at = status, now()
    session.add(share)
    session.add(Operation(
        resource_type="share", resource_id=share.id, action="reset_status",
        status="succeeded", workflow_id="", project_id=share.project_id, user_id=auth.user_id,
        idempotency_key=idempotency_key, last_error=note, finished_at=now()))
    session.commit()


# --- access rules --------------------------------------------------------------------

def key_row(session: Session, auth: AuthContext, key: str | None, rule: ShareAccessRule,
            action: str) -> Operation | None:
    """A finished Operation that keeps the Idempotency-Key of an allow/deny, so a repeat
    answers with the same rule."""
    if not key:
        return None
    row = Operation(resource_type="share_access", resource_id=rule.id, action=action,
                    status="succeeded", workflow_id="", project_id=auth.project_id,
                    user_id=auth.user_id, idempotency_key=key, finished_at=now())
    session.add(row)
    return row


def access_rules(session: Session, share: Share) -> list[ShareAccessRule]:
    """The share's rules that are not deleted, oldest first."""
    return list(session.exec(select(ShareAccessRule)
                             .where(ShareAccessRule.share_id == share.id)
                             .where(ShareAccessRule.state != RuleState.DELETED)
                             .order_by(col(ShareAccessRule.created_at))))


async def access_action(session: Session, auth: AuthContext, client: Client | None,
                        share_id: str, action: str, args: Any, key: str | None,
                        response: Response) -> AccessOne:
    """allow_access / deny_access: the rule row changes (validated, no duplicates), the
    share's access_rules_status becomes syncing, and the reconcile is signalled."""
    response.status_code = 200 if action == "allow_access" else 202
    earlier = find_idempotent(session, auth, key, "share_access", action)
    if earlier is not None:
        rule = session.get(ShareAccessRule, earlier.resource_id)
        if rule is None or rule.share_id != share_id:
            raise Conflict(f"Idempotency-Key {key!r} was already used for {action} on another "
                           "share", type="IdempotencyKeyReused")
        return AccessOne(access=AccessPublic.of(rule))
    share = get_share(session, auth, share_id)
    check_status(action, share)
    if action == "allow_access":
        try:
            access_type, access_to, level = validate(args.access_type, args.access_to,
                                                     args.access_level)
        except ValueError as e:
            raise BadRequest(str(e), type="InvalidShareAccess") from None
        taken = session.exec(select(ShareAccessRule).where(
            ShareAccessRule.share_id == share.id, ShareAccessRule.access_to == access_to,
            ShareAccessRule.state != RuleState.DELETED)).first()
        if taken is not None:
            raise BadRequest(f"Share access {access_type}:{access_to} exists (rule "
                             f"{taken.id}, {taken.state})", type="ShareAccessExists")
        rule = ShareAccessRule(share_id=share.id, access_type=access_type, access_to=access_to,
                               access_level=level, state=RuleState.QUEUED_TO_APPLY)
        before: str | None = None
    else:
        found = session.get(ShareAccessRule, args.access_id)
        if found is None or found.share_id != share.id or found.state == RuleState.DELETED:
            raise NotFound(f"access rule {args.access_id} not found on share {share.id}")
        if found.state in (RuleState.QUEUED_TO_DENY, RuleState.DENYING):
            raise BadRequest(f"access rule {found.id} is already being denied ({found.state})",
                             type="InvalidShareAccess")
        rule, before = found, found.state
        rule.state = RuleState.QUEUED_TO_DENY
    if client is None:  # before anything is written
        raise ServiceUnavailable("Temporal is not reachable", type="TemporalUnavailable")
    if share.host is None:
        raise Conflict(f"share {share.id} has no storage host yet", type="InvalidShare")
    rules_status = share.access_rules_status
    rule.updated_at = share.updated_at = now()
    share.access_rules_status = "syncing"
    session.add_all([rule, share])
    kept = key_row(session, auth, key, rule, action)
    session.commit()
    try:
        await signal_access_sync(client, share)
    except ServiceUnavailable:
        # nothing will pick the change up: take it back (unless the rule moved meanwhile)
        session.refresh(rule)
        if before is None and rule.state == RuleState.QUEUED_TO_APPLY:
            session.delete(rule)
        elif before is not None and rule.state == RuleState.QUEUED_TO_DENY:
            rule.state = before
            session.add(rule)
        if kept is not None:
            session.delete(kept)
        session.refresh(share)
        if share.access_rules_status == "syncing":
            share.access_rules_status = rules_status
            session.add(share)
        session.commit()
        raise
    return AccessOne(access=AccessPublic.of(rule))

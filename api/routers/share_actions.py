"""`POST /v1/shares/{id}/action` (Manila's share actions, exactly one key) and
`GET /v1/shares/{id}/access-rules`.

extend, shrink and force_delete answer 202 with the operation; allow_access 200 with
the rule, deny_access 202 with the rule, reset_status 200 with the share. Checks, in
order: the body (400), Idempotency-Key replay, the share is visible (404), admin-only
actions (403), the status table (409), the arguments against the share (400), quotas
(413). Readers never get past the auth (403). The logic: api/services/share_actions.py.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response

from api.deps import AuthDep, IdempotencyKey, MaybeTemporalDep, SessionDep, WriterDep
from api.schemas.common import OperationAccepted, OperationBrief
from api.schemas.shares import AccessList, AccessOne, AccessPublic, SharePublic
from api.services.operations import find_idempotent, idempotency_guard
from api.services.share_actions import access_action, access_rules, parse_action, run_action
from api.services.shares import get_share, view

router = APIRouter(prefix="/v1/shares", tags=["share actions"])


@router.post("/{share_id}/action", status_code=202,
             response_model=AccessOne | OperationAccepted | SharePublic)
async def share_action(share_id: str, response: Response, session: SessionDep,
                       auth: WriterDep, client: MaybeTemporalDep,
                       body: Annotated[Any, Body()],
                       idempotency_key: IdempotencyKey = None
                       ) -> AccessOne | OperationAccepted | SharePublic:
    action, args = parse_action(body)
    async with idempotency_guard(auth, idempotency_key):
        if action in ("allow_access", "deny_access"):
            return await access_action(session, auth, client, share_id, action, args,
                                       idempotency_key, response)
        earlier = find_idempotent(session, auth, idempotency_key, "share", action, share_id)
        if earlier is not None and earlier.workflow_id:
            return OperationAccepted(operation=OperationBrief.of(earlier))
        share = get_share(session, auth, share_id)
        if earlier is not None:  # reset_status: the share as it is now
            response.status_code = 200
            return view(session, auth, share)
        op = await run_action(client, session, auth, share, action, args, idempotency_key)
        if op is None:  # reset_status
            response.status_code = 200
            return view(session, auth, share)
        return OperationAccepted(operation=OperationBrief.of(op))


@router.get("/{share_id}/access-rules", response_model=AccessList)
def list_access_rules(share_id: str, session: SessionDep, auth: AuthDep) -> AccessList:
    rules = access_rules(session, get_share(session, auth, share_id))
    return AccessList(access_list=[AccessPublic.of(r) for r in rules])

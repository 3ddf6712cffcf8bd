"""Shares (Manila): create, list, show, delete. The logic is in
api/services/shares.py; actions in share_actions.py."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import AuthDep, IdempotencyKey, SessionDep, TemporalDep, WriterDep
from api.schemas.common import OperationAccepted, OperationBrief
from api.schemas.shares import ShareAccepted, ShareCreate, ShareList, SharePublic
from api.services import shares
from api.services.operations import find_idempotent, idempotency_guard, replayed_row
from api.services.shares import get_share, view
from vmflow.models import Share

router = APIRouter(prefix="/v1/shares", tags=["shares"])


@router.post("", status_code=202, response_model=ShareAccepted)
async def create_share(body: ShareCreate, session: SessionDep, auth: WriterDep,
                       client: TemporalDep,
                       idempotency_key: IdempotencyKey = None) -> ShareAccepted:
    async with idempotency_guard(auth, idempotency_key):
        earlier = find_idempotent(session, auth, idempotency_key, "share", "create")
        if earlier is not None:
            share = replayed_row(session, Share, earlier.resource_id, "share")
            return ShareAccepted(share=view(session, auth, share),
                                 operation=OperationBrief.of(earlier))
        share, op = await shares.create_share(client, session, auth, body, idempotency_key)
        return ShareAccepted(share=view(session, auth, share), operation=OperationBrief.of(op))


@router.get("", response_model=ShareList)
def list_shares(session: SessionDep, auth: AuthDep) -> ShareList:
    return ShareList(shares=shares.listed(session, auth))


@router.get("/{share_id}", response_model=SharePublic)
def show_share(share_id: str, session: SessionDep, auth: AuthDep) -> SharePublic:
    return view(session, auth, get_share(session, auth, share_id))


@router.delete("/{share_id}", status_code=202, response_model=OperationAccepted)
async def delete_share(share_id: str, session: SessionDep, auth: WriterDep, client: TemporalDep,
                       idempotency_key: IdempotencyKey = None) -> OperationAccepted:
    async with idempotency_guard(auth, idempotency_key):
        earlier = find_idempotent(session, auth, idempotency_key, "share", "delete", share_id)
        if earlier is not None:  # the share may be gone by now: replay anyway
            return OperationAccepted(operation=OperationBrief.of(earlier))
        op = await shares.delete_share(client, session, auth, share_id, idempotency_key)
        return OperationAccepted(operation=OperationBrief.of(op))

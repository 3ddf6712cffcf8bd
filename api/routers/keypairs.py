"""Keypairs (Nova's os-keypairs): SSH public keys of the calling user.

A keypair belongs to the user, not the project (as in Nova): the same user sees
the same keypairs whichever project the token is for, nobody else sees them.
Without a public_key one is generated; its private key is in that one answer only.
The logic is in api/services/keypairs.py.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import AuthDep, IdempotencyKey, SessionDep, WriterDep
from api.schemas.keypairs import KeypairCreate, KeypairList, KeypairOne, KeypairPublic
from api.services import keypairs
from api.services.operations import find_idempotent, idempotency_guard, replayed_row
from vmflow.models import Keypair

router = APIRouter(prefix="/v1/keypairs", tags=["keypairs"])


@router.post("", status_code=201, response_model=KeypairOne, response_model_exclude_none=True)
async def create_keypair(body: KeypairCreate, response: Response, session: SessionDep,
                         auth: WriterDep, idempotency_key: IdempotencyKey = None) -> KeypairOne:
    async with idempotency_guard(auth, idempotency_key):
        earlier = find_idempotent(session, auth, idempotency_key, "keypair", "create")
        if earlier is not None:  # the private key is not kept: a repeat has none
            return KeypairOne(keypair=KeypairPublic.of(
                replayed_row(session, Keypair, earlier.resource_id, "keypair")))
        kp, private_key = await keypairs.create(session, auth, body, idempotency_key)
        if private_key is not None:
            response.headers["Cache-Control"] = "no-store"  # it holds a secret
        return KeypairOne(keypair=KeypairPublic.of(kp, private_key))


@router.get("", response_model=KeypairList, response_model_exclude_none=True)
def list_keypairs(session: SessionDep, auth: AuthDep) -> KeypairList:
    return KeypairList(keypairs=[KeypairPublic.of(k) for k in keypairs.listed(session, auth)])


@router.get("/{name}", response_model=KeypairOne, response_model_exclude_none=True)
def show_keypair(name: str, session: SessionDep, auth: AuthDep) -> KeypairOne:
    return KeypairOne(keypair=KeypairPublic.of(keypairs.get_keypair(session, auth, name)))


@router.delete("/{name}", status_code=204)
def delete_keypair(name: str, session: SessionDep, auth: WriterDep,
                   idempotency_key: IdempotencyKey = None) -> Response:
    """Servers launched with it keep the key they were given."""
    if find_idempotent(session, auth, idempotency_key, "keypair", "delete") is None:
        keypairs.delete(session, auth, name, idempotency_key)
    return Response(status_code=204)

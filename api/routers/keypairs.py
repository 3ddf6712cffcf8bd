"""Keypairs (Nova's os-keypairs): SSH public keys of the calling user.

A keypair belongs to the user, not the project (as in Nova): the same user sees
the same keypairs whichever project the token is for, nobody else sees them.
Without a public_key one is generated; its private key is in that one answer only.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess

from fastapi import APIRouter, Response
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from api.auth import AuthContext
from api.deps import AuthDep, IdempotencyKey, SessionDep, WriterDep
from api.errors import BadRequest, Conflict, NotFound, ServiceUnavailable
from api.schemas.keypairs import KeypairCreate, KeypairList, KeypairOne, KeypairPublic
from api.services.keypairs import InvalidKey, generate, parse_public_key
from api.services.operations import find_idempotent, idempotency_guard, remember_key
from vmflow.models import Keypair

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/keypairs", tags=["keypairs"])


def get_keypair(session: Session, auth: AuthContext, name: str) -> Keypair:
    kp = session.exec(select(Keypair).where(Keypair.user_id == auth.user_id,
                                            Keypair.name == name)).first()
    if kp is None:
        raise NotFound(f"keypair {name!r} not found")
    return kp


@router.post("", status_code=201, response_model=KeypairOne, response_model_exclude_none=True)
async def create_keypair(body: KeypairCreate, response: Response, session: SessionDep,
                         auth: WriterDep, idempotency_key: IdempotencyKey = None) -> KeypairOne:
    async with idempotency_guard(auth, idempotency_key):
        earlier = find_idempotent(session, auth, idempotency_key, "keypair", "create")
        if earlier is not None:  # the private key is not kept: a repeat has none
            kp = session.get(Keypair, earlier.resource_id)
            if kp is None:
                raise NotFound(f"keypair {earlier.resource_id} not found")
            return KeypairOne(keypair=KeypairPublic.of(kp))
        if session.exec(select(Keypair).where(Keypair.user_id == auth.user_id,
                                              Keypair.name == body.name)).first():
            raise Conflict(f"a keypair named {body.name!r} exists", type="KeypairExists")
        private_key = None
        if body.public_key is None:
            try:
                private_key, public_key = await asyncio.to_thread(generate, body.name)
            except (OSError, subprocess.SubprocessError) as e:
                log.error("ssh-keygen failed: %s", e)
                raise ServiceUnavailable("could not generate a keypair (ssh-keygen failed)",
                                         type="KeygenFailed") from e
        else:
            public_key = body.public_key
        try:
            public_key, fingerprint = parse_public_key(public_key)
        except InvalidKey as e:
            raise BadRequest(f"public_key: {e}", type="InvalidKey") from None
        kp = Keypair(user_id=auth.user_id, name=body.name, public_key=public_key,
                     fingerprint=fingerprint, type=body.type)
        session.add(kp)
        remember_key(session, auth, idempotency_key, "keypair", kp.id, "create")
        try:
            session.commit()
        except IntegrityError:  # created by a concurrent request since the check above
            session.rollback()
            raise Conflict(f"a keypair named {body.name!r} exists",
                           type="KeypairExists") from None
        if private_key is not None:
            response.headers["Cache-Control"] = "no-store"  # it holds a secret
        return KeypairOne(keypair=KeypairPublic.of(kp, private_key))


@router.get("", response_model=KeypairList, response_model_exclude_none=True)
def list_keypairs(session: SessionDep, auth: AuthDep) -> KeypairList:
    stmt = select(Keypair).where(Keypair.user_id == auth.user_id).order_by(col(Keypair.name))
    return KeypairList(keypairs=[KeypairPublic.of(k) for k in session.exec(stmt)])


@router.get("/{name}", response_model=KeypairOne, response_model_exclude_none=True)
def show_keypair(name: str, session: SessionDep, auth: AuthDep) -> KeypairOne:
    return KeypairOne(keypair=KeypairPublic.of(get_keypair(session, auth, name)))


@router.delete("/{name}", status_code=204)
def delete_keypair(name: str, session: SessionDep, auth: WriterDep,
                   idempotency_key: IdempotencyKey = None) -> Response:
    """Servers launched with it keep the key they were given."""
    if find_idempotent(session, auth, idempotency_key, "keypair", "delete") is None:
        kp = get_keypair(session, auth, name)
        session.delete(kp)
        remember_key(session, auth, idempotency_key, "keypair", kp.id, "delete")
        session.commit()
    return Response(status_code=204)

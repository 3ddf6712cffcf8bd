"""Nova's os-keypairs over api/services/keypairs.py: the caller's keypairs (an admin
names another user with user_id from 2.10). Without a public_key one is generated and
its private key is in that one answer. Status codes per microversion: create 200 at
2.1, 201 from 2.2; delete 202 at 2.1, 204 from 2.2; `type` from 2.2."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import Field
from sqlmodel import Session

from api.auth import AuthContext
from api.deps import SessionDep
from api.errors import BadRequest, Forbidden, NotFound
from api.openstack.common import Lenient, OsAuthDep, OsWriterDep
from api.openstack.compute.listing import PREFIX, checked, nova_time
from api.openstack.microversion import MicroversionDep, Version
from api.schemas.keypairs import KeypairCreate
from api.services import keypairs
from vmflow.models import Keypair, User

router = APIRouter(prefix=PREFIX)

TYPED = Version(2, 2)
USER_ID = Version(2, 10)


class NewKeypair(Lenient):
    name: str
    public_key: str | None = None
    type: str = "ssh"
    user_id: str | None = Field(default=None, min_length=1, max_length=255)


class KeypairBody(Lenient):
    keypair: NewKeypair


def numeric_id(kp: Keypair) -> int:
    """Nova shows its row's integer id; vmflow's is a UUID: its first 31 bits, stable."""
    return uuid.UUID(kp.id).int >> 97


def _as_user(session: Session, auth: AuthContext, user_id: str | None,
             v: Version) -> AuthContext:
    """The caller, or (2.10 and up, admins only) the user it names."""
    if user_id is None or user_id == auth.user_id:
        return auth
    if v < USER_ID:
        raise BadRequest("user_id is accepted from microversion 2.10")
    if not auth.is_admin:
        raise Forbidden("Policy doesn't allow os_compute_api:os-keypairs to be performed "
                        "for another user.")
    if session.get(User, user_id) is None:
        raise NotFound(f"user {user_id} not found")
    return dataclasses.replace(auth, user_id=user_id)


def _query_user(request: Request, session: Session, auth: AuthContext,
                v: Version) -> AuthContext:
    user_id = request.query_params.get("user_id") if v >= USER_ID else None
    return _as_user(session, auth, user_id, v)


def _typed(out: dict[str, Any], kp: Keypair, v: Version) -> dict[str, Any]:
    if v >= TYPED:
        out["type"] = kp.type
    return out


@router.get("/os-keypairs")
def list_keypairs(request: Request, session: SessionDep, auth: OsAuthDep,
                  v: MicroversionDep) -> dict[str, Any]:
    owner = _query_user(request, session, auth, v)
    return {"keypairs": [{"keypair": _typed({"name": k.name, "public_key": k.public_key,
                                             "fingerprint": k.fingerprint}, k, v)}
                         for k in keypairs.listed(session, owner)]}


@router.post("/os-keypairs")
async def create_keypair(body: dict[str, Any], response: Response, session: SessionDep,
                         auth: OsWriterDep, v: MicroversionDep) -> dict[str, Any]:
    new = checked(KeypairBody, body).keypair
    if new.type != "ssh" and v < TYPED:
        raise BadRequest("type is accepted from microversion 2.2")
    if new.type == "x509":
        raise BadRequest("vmflow keeps SSH keypairs only: type must be ssh")
    owner = _as_user(session, auth, new.user_id, v)
    request_body = checked(KeypairCreate, {"name": new.name, "public_key": new.public_key,
                                           "type": new.type})
    kp, private_key = await keypairs.create(session, owner, request_body, None)
    response.status_code = 201 if v >= TYPED else 200
    out = {"name": kp.name, "public_key": kp.public_key, "fingerprint": kp.fingerprint,
           "user_id": kp.user_id}
    if private_key is not None:
        out["private_key"] = private_key
        response.headers["Cache-Control"] = "no-store"  # it holds a secret
    return {"keypair": _typed(out, kp, v)}


@router.get("/os-keypairs/{name}")
def show_keypair(name: str, request: Request, session: SessionDep, auth: OsAuthDep,
                 v: MicroversionDep) -> dict[str, Any]:
    kp = keypairs.get_keypair(session, _query_user(request, session, auth, v), name)
    return {"keypair": _typed({
        "name": kp.name, "public_key": kp.public_key, "fingerprint": kp.fingerprint,
        "user_id": kp.user_id, "created_at": nova_time(kp.created_at), "updated_at": None,
        "deleted": False, "deleted_at": None, "id": numeric_id(kp)}, kp, v)}


@router.delete("/os-keypairs/{name}")
def delete_keypair(name: str, request: Request, session: SessionDep, auth: OsWriterDep,
                   v: MicroversionDep) -> Response:
    keypairs.delete(session, _query_user(request, session, auth, v), name, None)
    return Response(status_code=204 if v >= TYPED else 202)

"""Typed dependencies for the routers: DB session, auth context, Temporal client."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session
from temporalio.client import Client

from api.auth import AuthContext, authenticate, check_method, check_service, require_role
from api.errors import ServiceUnavailable, Unauthorized
from vmflow import temporal
from vmflow.db import get_engine

log = logging.getLogger(__name__)

TEMPORAL_CONNECT_TIMEOUT = 5.0


def get_session() -> Iterator[Session]:
    # expire_on_commit=False: views are built from rows after the commit
    with Session(get_engine(), expire_on_commit=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]

_bearer = HTTPBearer(auto_error=False)  # we answer 401 in our own error shape


def get_auth(
    request: Request,
    session: SessionDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AuthContext:
    if creds is None or not creds.credentials:
        raise Unauthorized("missing bearer token (Authorization: Bearer <token>)")
    auth = authenticate(session, creds.credentials)
    if auth is None:
        raise Unauthorized("invalid or expired token")
    check_method(auth, request.method)
    route = request.scope.get("route")
    check_service(auth, request.method, getattr(route, "path", None))
    return auth


AuthDep = Annotated[AuthContext, Depends(get_auth)]


def _writer(auth: AuthDep) -> AuthContext:
    return require_role(auth, "admin", "member")


def _admin(auth: AuthDep) -> AuthContext:
    return require_role(auth, "admin")


WriterDep = Annotated[AuthContext, Depends(_writer)]
AdminDep = Annotated[AuthContext, Depends(_admin)]


async def connect_temporal() -> Client | None:
    """Connect once; None (and a log line) if Temporal is not up yet."""
    try:
        return await asyncio.wait_for(temporal.connect(), TEMPORAL_CONNECT_TIMEOUT)
    except Exception as e:  # any failure to connect means "not yet"
        log.warning("Temporal not reachable: %s", e)
        return None


async def get_temporal(request: Request) -> Client:
    """The client made at startup; if Temporal was down then, try again now."""
    state = request.app.state
    if state.temporal is None:
        async with state.temporal_lock:
            if state.temporal is None:
                state.temporal = await connect_temporal()
    if state.temporal is None:
        raise ServiceUnavailable("Temporal is not reachable", type="TemporalUnavailable")
    client: Client = state.temporal
    return client


TemporalDep = Annotated[Client, Depends(get_temporal)]


async def get_temporal_or_none(request: Request) -> Client | None:
    """For reads that can do without Temporal (the DB row is still an answer)."""
    try:
        return await get_temporal(request)
    except ServiceUnavailable:
        return None


MaybeTemporalDep = Annotated[Client | None, Depends(get_temporal_or_none)]

# accepted by every mutating route: a repeat returns the first result
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)]

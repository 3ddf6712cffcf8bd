"""The FastAPI application: routers, lifespan (one Temporal client) and error shape.

Every error is JSON {"error": {"code": <http>, "type": "<Name>", "message": "..."}}.
Request validation errors (malformed JSON, wrong types, unknown or missing keys, out
of range values) answer 400, as Nova does, with type "InvalidJSON" or
"ValidationError" and a "details" list of {loc, msg, type}.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError
from starlette.exceptions import HTTPException

from api import openstack
from api.deps import connect_temporal
from api.errors import ApiError, Unauthorized
from api.routers import (
    backup_schedules,
    flavors,
    floating_ips,
    health,
    hosts,
    identity,
    image_files,
    image_members,
    images,
    interfaces,
    keypairs,
    metadata,
    migrations,
    networks,
    operations,
    ports,
    quotas,
    reconcilers,
    security_groups,
    server_actions,
    servers,
    share_actions,
    share_snapshots,
    share_types,
    shares,
    subnets,
)
from api.services.operations import is_key_race
from vmflow.metrics import RequestMetrics
from vmflow.states import ActionNotAllowed


def error_response(code: int, type_: str, message: str, headers: dict[str, str] | None = None,
                   **extra: Any) -> JSONResponse:
    body = {"error": {"code": code, "type": type_, "message": message, **extra}}
    return JSONResponse(body, status_code=code, headers=headers)


def _type_for(code: int) -> str:
    try:
        return HTTPStatus(code).phrase.replace(" ", "").replace("-", "")
    except ValueError:
        return "Error"


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
    return error_response(exc.status, exc.type, exc.message, headers)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    return error_response(exc.status_code, _type_for(exc.status_code), message,
                          dict(exc.headers) if exc.headers else None)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # the input itself is not echoed back: it may be large (user_data) or secret
    details = [
        {"loc": ".".join(str(p) for p in e["loc"][1:] or e["loc"]), "msg": e["msg"],
         "type": e["type"]}
        for e in exc.errors()
    ]
    if any(d["type"] == "json_invalid" for d in details):
        return error_response(400, "InvalidJSON", "the request body is not valid JSON",
                              details=details)
    message = "; ".join(f"{d['loc']}: {d['msg']}" if d["loc"] else d["msg"] for d in details)
    return error_response(400, "ValidationError", message or "invalid request",
                          details=details)


async def _integrity_error(request: Request, exc: Exception) -> JSONResponse:
    if is_key_race(exc):  # the same key is being acted on by another API process
        return error_response(409, "IdempotencyKeyInProgress",
                              "a request with this Idempotency-Key is in progress; retry it "
                              "to get its result", {"Retry-After": "1"})
    return await _unexpected(request, exc)


async def _data_error(_: Request, exc: Exception) -> JSONResponse:
    # the database refused a value of the request (PostgreSQL: a NUL character in text,
    # which SQLite stores); the session rolled back, so nothing changed
    return error_response(400, "InvalidInput", "a value of the request cannot be stored or "
                          "compared (a NUL character, or out of range)")


async def _action_not_allowed(_: Request, exc: Exception) -> JSONResponse:
    return error_response(409, "ActionNotAllowed", str(exc))


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    # Starlette re-raises after this response, so uvicorn logs the traceback once
    return error_response(500, "InternalError", "internal error; see the API log")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # one client for the process; if Temporal is not up yet, deps.get_temporal retries
    app.state.temporal_lock = asyncio.Lock()
    app.state.temporal = await connect_temporal()
    # the ~200k objects start-up made (routes, models, schemas) live as long as the
    # process; a full collection walking them took ~100 ms and was the 1% of list
    # requests over 100 ms (bench/list_servers.py); frozen, the collector skips them
    gc.collect()
    gc.freeze()
    yield
    app.state.temporal = None  # the client has no close(); its connection goes with it


def create_app() -> FastAPI:
    app = FastAPI(title="vmflow", version="1", lifespan=lifespan)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ActionNotAllowed, _action_not_allowed)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(Exception, _unexpected)
    for module in (health, identity, servers, server_actions, metadata, keypairs, operations,
                   images, image_files, image_members, flavors, hosts, reconcilers,
                   migrations):
        app.include_router(module.router)
    app.include_router(backup_schedules.router)
    for module in (shares, share_actions, share_snapshots, share_types, quotas):
        app.include_router(module.router)
    for module in (networks, subnets, ports, security_groups, floating_ips, interfaces):
        app.include_router(module.router)
    # inside mount()'s BarePrefix, which hands on a copy of the scope: the routers fill
    # in the route on the scope this middleware reads back
    app.add_middleware(RequestMetrics)
    openstack.mount(app)  # /identity, /compute, /image, /share
    return app


app = create_app()

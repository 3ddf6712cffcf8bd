"""What every OpenStack facade shares: the token header, a request id on every
response, error bodies in the service's own shape, and lenient request models (the
real clients send keys vmflow's /v1 refuses: CLIENTS.md section 0.9)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException

from api.auth import AuthContext, authenticate, check_method, require_role
from api.deps import SessionDep
from api.errors import ApiError, Unauthorized
from vmflow.models import REQUEST_ID
from vmflow.states import ActionNotAllowed


class Lenient(BaseModel):
    """A request body as OpenStack's clients send it: unknown keys are ignored."""

    model_config = ConfigDict(extra="ignore")


NEEDS_AUTH = "The request you have made requires authentication."


def request_token(request: Request, x_auth_token: str | None) -> str | None:
    """The token a request carries: X-Auth-Token, else an `Authorization: Bearer` one."""
    if x_auth_token:
        return x_auth_token
    bearer = request.headers.get("authorization", "")
    if not bearer.lower().startswith("bearer "):
        return None
    return bearer[7:].strip() or None


def os_auth(request: Request, session: SessionDep,
            x_auth_token: Annotated[str | None, Header()] = None) -> AuthContext:
    """The caller of a Keystone token (X-Auth-Token): a vmflow token; a Bearer one too."""
    token = request_token(request, x_auth_token)
    if not token:
        raise Unauthorized(NEEDS_AUTH)
    auth = authenticate(session, token)
    if auth is None or auth.is_service:
        raise Unauthorized(NEEDS_AUTH)
    check_method(auth, request.method)
    return auth


OsAuthDep = Annotated[AuthContext, Depends(os_auth)]


def _os_writer(auth: OsAuthDep) -> AuthContext:
    return require_role(auth, "admin", "member")


def _os_admin(auth: OsAuthDep) -> AuthContext:
    return require_role(auth, "admin")


OsWriterDep = Annotated[AuthContext, Depends(_os_writer)]
OsAdminDep = Annotated[AuthContext, Depends(_os_admin)]

# Nova's and Manila's fault names by status (nova/api/openstack/wsgi.py Fault)
FAULT_NAMES = {400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound",
               405: "badMethod", 406: "notAcceptable", 409: "conflictingRequest",
               413: "overLimit", 415: "badMediaType", 429: "overLimit", 501: "notImplemented",
               503: "serviceUnavailable"}

# status, message -> body: each service's error shape
Render = Callable[[int, str], dict[str, Any]]


def nova_fault(code: int, message: str) -> dict[str, Any]:
    """Nova and Manila: {"itemNotFound": {"code": 404, "message": "..."}}."""
    return {FAULT_NAMES.get(code, "computeFault"): {"code": code, "message": message}}


def keystone_error(code: int, message: str) -> dict[str, Any]:
    """Keystone (and Glance's JSON errors): {"error": {"code", "title", "message"}}."""
    return {"error": {"code": code, "title": _phrase(code), "message": message}}


def _phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Error"


def install_errors(app: FastAPI, render: Render) -> None:
    """Every error of the sub-application in its service's shape (status codes as /v1's:
    404 for what the caller may not see, 409 for a state conflict, 400 for bad input)."""
    def answer(code: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse(render(code, message), status_code=code, headers=headers)

    async def api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        headers = {"WWW-Authenticate": "Keystone uri=\"/identity\""} \
            if isinstance(exc, Unauthorized) else None
        return answer(exc.status, exc.message, headers)

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        message = exc.detail if isinstance(exc.detail, str) else _phrase(exc.status_code)
        return answer(exc.status_code, message, dict(exc.headers) if exc.headers else None)

    async def invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        parts = [f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors()]
        return answer(400, "Invalid input for field/attribute. " + "; ".join(parts))

    async def not_allowed(_: Request, exc: Exception) -> JSONResponse:
        return answer(409, str(exc))

    async def data_error(_: Request, exc: Exception) -> JSONResponse:  # as /v1's
        return answer(400, "Invalid input: a value cannot be stored or compared.")

    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        return answer(500, "Unexpected API Error. See the API log.")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(ActionNotAllowed, not_allowed)
    app.add_exception_handler(DataError, data_error)
    app.add_exception_handler(Exception, unexpected)


def new_request_id() -> str:
    return f"req-{uuid.uuid4()}"


def install_request_id(app: FastAPI, *extra_headers: str) -> None:
    """X-OpenStack-Request-Id on every response (and the service's own names for it):
    request.state.request_id, which an operation started by the request records, or
    the one a handler set on the response already."""
    @app.middleware("http")
    async def request_id(request: Request,
                         call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        request.state.request_id = new_request_id()
        token = REQUEST_ID.set(request.state.request_id)  # the operation it starts records it
        try:
            response = await call_next(request)
        finally:
            REQUEST_ID.reset(token)
        rid = response.headers.get("X-OpenStack-Request-Id") or request.state.request_id
        for name in ("X-OpenStack-Request-Id", *extra_headers):
            response.headers[name] = rid
        return response


def service_app(title: str, render: Render, *request_id_headers: str,
                before_request_id: Callable[[FastAPI], None] | None = None) -> FastAPI:
    """A facade's sub-application: no docs of its own (the service's own API reference
    documents it), its error shape and its request ids. `before_request_id` installs
    middleware inside the request-id one (which then marks its answers too)."""
    app = FastAPI(title=title, openapi_url=None, docs_url=None, redoc_url=None)
    install_errors(app, render)
    if before_request_id is not None:
        before_request_id(app)
    install_request_id(app, *request_id_headers)
    return app

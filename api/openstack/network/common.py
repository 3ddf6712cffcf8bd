"""What every Neutron resource route shares: the NeutronError body, the request body
`{"<resource>": {...}}` turned into vmflow's /v1 request model (refusing, not
dropping, the attributes vmflow cannot honour), the caller a `project_id` in a body
names, and Neutron's list query (attribute filters, `fields=`, `limit`/`marker`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import Body, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from sqlmodel import Session

from api.auth import AuthContext
from api.errors import ApiError, BadRequest, Forbidden, NotFound
from api.schemas.common import utc
from vmflow.models import Project

M = TypeVar("M", bound=BaseModel)
JsonBody = Annotated[Any, Body()]  # any JSON: each route reads its resource out of it

# vmflow's generic error types -> the names Neutron (webob, oslo.policy) gives them
GENERIC_TYPES = {"BadRequest": "HTTPBadRequest", "NotFound": "HTTPNotFound",
                 "Conflict": "HTTPConflict", "Forbidden": "PolicyNotAuthorized",
                 "Unauthorized": "HTTPUnauthorized", "InternalError": "HTTPInternalServerError",
                 "ServiceUnavailable": "HTTPServiceUnavailable"}
STATUS_TYPES = {400: "HTTPBadRequest", 401: "HTTPUnauthorized", 403: "PolicyNotAuthorized",
                404: "HTTPNotFound", 405: "HTTPMethodNotAllowed", 409: "HTTPConflict",
                413: "HTTPRequestEntityTooLarge", 415: "HTTPUnsupportedMediaType",
                500: "HTTPInternalServerError", 503: "HTTPServiceUnavailable"}


def neutron_body(code: int, message: str, type_: str | None = None) -> dict[str, Any]:
    """Neutron's error body: {"NeutronError": {"type", "message", "detail"}}."""
    return {"NeutronError": {"type": type_ or STATUS_TYPES.get(code, "HTTPError"),
                             "message": message, "detail": ""}}


def neutron_error(code: int, message: str) -> dict[str, Any]:
    return neutron_body(code, message)


def install_typed_errors(app: FastAPI) -> None:
    """vmflow's ApiError carries a type (NetworkNotFound, SubnetInUse, ...) that
    Neutron's body names; the skeleton's renderer only sees the status."""
    async def api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        type_ = GENERIC_TYPES.get(exc.type, exc.type)
        headers = {"WWW-Authenticate": "Keystone uri=\"/identity\""} \
            if exc.status == 401 else None
        return JSONResponse(neutron_body(exc.status, exc.message, type_),
                            status_code=exc.status, headers=headers)

    app.add_exception_handler(ApiError, api_error)


def stamp(dt: datetime) -> str:
    """Neutron's timestamps: 2024-01-02T03:04:05Z."""
    return utc(dt).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- request bodies ---------------------------------------------------------------------

def resource_body(body: Any, key: str) -> dict[str, Any]:
    """The attributes of `{"<key>": {...}}`; 400 for anything else."""
    if not isinstance(body, dict) or not isinstance(body.get(key), dict):
        raise BadRequest(f"Resource body required: {{\"{key}\": {{...}}}}",
                         type="HTTPBadRequest")
    inner: dict[str, Any] = body[key]
    return inner


def refuse(attrs: dict[str, Any], allowed: dict[str, Callable[[Any], bool]],
           why: str = "is not supported by vmflow") -> None:
    """400 for an attribute Neutron has that vmflow cannot honour, unless its value is
    one vmflow gives anyway (port_security_enabled true, host_routes [], ...)."""
    for key, fine in allowed.items():
        if key in attrs and not fine(attrs[key]):
            raise BadRequest(f"Invalid input for {key}: {attrs[key]!r} {why}",
                             type="InvalidInput")


def to_v1(model: type[M], attrs: dict[str, Any], keys: Iterable[str]) -> M:
    """vmflow's /v1 request model from the Neutron attributes it knows (the others the
    clients send are ignored, CLIENTS.md 0.9); its checks answer 400 InvalidInput."""
    data = {k: attrs[k] for k in keys if k in attrs}
    try:
        return model.model_validate(data)
    except ValidationError as e:
        parts = [f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()]
        raise BadRequest("Invalid input for operation: " + "; ".join(parts),
                         type="InvalidInput") from None


def acting_as(session: Session, auth: AuthContext, attrs: dict[str, Any]) -> AuthContext:
    """The caller a create acts for: `project_id`/`tenant_id` in the body may name the
    caller's own project, or (admins only, Neutron's policy) another existing one."""
    target = attrs.get("project_id", attrs.get("tenant_id"))
    if target is None or target == auth.project_id:
        return auth
    if not auth.is_admin:
        raise Forbidden("only an admin makes resources for another project")
    if not isinstance(target, str) or session.get(Project, target) is None:
        raise NotFound(f"project {target} not found", type="ProjectNotFound")
    return AuthContext(user_id=auth.user_id, project_id=target, role=auth.role)


# --- list queries -----------------------------------------------------------------------

PAGING = frozenset({"fields", "limit", "marker", "sort_key", "sort_dir", "page_reverse"})


def _matches(value: Any, wanted: list[str]) -> bool:
    if isinstance(value, bool):
        return any(w.lower() in (("true", "1") if value else ("false", "0")) for w in wanted)
    if isinstance(value, list):  # fixed_ips=ip_address=..., security_groups=<id>
        for w in wanted:
            key, _, val = w.partition("=")
            for item in value:
                if isinstance(item, dict) and val and str(item.get(key)) == val:
                    return True
                if not isinstance(item, dict) and str(item) == w:
                    return True
        return False
    if value is None:
        return any(w in ("", "None", "null") for w in wanted)
    return str(value) in wanted


def listed(request: Request, items: list[dict[str, Any]], collection: str,
           attributes: Iterable[str]) -> dict[str, Any]:
    """`{collection: items}` filtered as Neutron filters (each query parameter naming an
    attribute; repeated values are alternatives; an unknown one is 400, as Neutron's
    filter validation has it), paged by limit/marker, trimmed to `fields=`."""
    known = set(attributes)
    query = request.query_params
    for key in query:
        if key in PAGING:
            continue
        if key not in known:
            raise BadRequest(f"[{key}] is invalid attribute for filtering",
                             type="HTTPBadRequest")
        wanted = query.getlist(key)
        items = [i for i in items if key in i and _matches(i[key], wanted)]
    body: dict[str, Any] = {collection: page(request, items, collection)}
    fields = query.getlist("fields")
    if fields:
        body[collection] = [{k: v for k, v in i.items() if k in fields}
                            for i in body[collection]]
    return body


def page(request: Request, items: list[dict[str, Any]], collection: str) -> list[dict[str, Any]]:
    query = request.query_params
    marker = query.get("marker")
    if marker:
        ids = [i["id"] for i in items]
        if marker not in ids:
            raise NotFound(f"marker {marker} not found", type="HTTPNotFound")
        items = items[ids.index(marker) + 1:]
    limit = query.get("limit")
    if limit:
        try:
            n = int(limit)
        except ValueError:
            raise BadRequest(f"limit {limit!r} is not an integer",
                             type="HTTPBadRequest") from None
        if n > 0:
            items = items[:n]
    return items


def selected(request: Request, item: dict[str, Any]) -> dict[str, Any]:
    """One resource trimmed to `fields=` (Neutron's show takes it too)."""
    fields = request.query_params.getlist("fields")
    return {k: v for k, v in item.items() if k in fields} if fields else item

"""Manila's share types and their extra specs. vmflow's shares need no share server:
every type has driver_handles_share_servers=False, which is required when a type is
made and may not be removed. A facade over api/services/share_types.py."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from pydantic import ValidationError
from sqlmodel import Session, select

from api.auth import AuthContext
from api.deps import SessionDep
from api.errors import BadRequest, Forbidden, NotFound
from api.openstack.common import OsAdminDep, OsAuthDep
from api.openstack.microversion import MicroversionDep, Version
from api.openstack.share.base import flag, router
from api.schemas.common import spec_true
from api.schemas.share_types import ShareTypeCreate
from api.services import share_types as service
from vmflow.bootstrap import DEFAULT_SHARE_TYPE
from vmflow.models import ShareType

api = router()
DHSS = "driver_handles_share_servers"


def view(t: ShareType, v: Version) -> dict[str, Any]:
    specs = dict(t.extra_specs or {})
    d: dict[str, Any] = {"id": t.id, "name": t.name, "extra_specs": specs,
                         "required_extra_specs": {DHSS: specs.get(DHSS, "False")}}
    access = "share_type_access:is_public" if v >= Version(2, 7) else \
        "os-share-type-access:is_public"
    d[access] = t.is_public
    if v >= Version(2, 41):
        d["description"] = t.description
    if v >= Version(2, 46):
        d["is_default"] = t.name == DEFAULT_SHARE_TYPE
    return d


def one(t: ShareType, v: Version) -> dict[str, Any]:
    """Both keys: old clients read volume_type."""
    shown = view(t, v)
    return {"share_type": shown, "volume_type": shown}


def checked_specs(specs: Any, creating: bool) -> dict[str, str]:
    """Extra specs as strings, booleans valid; DHSS must be False (and given on create)."""
    if not isinstance(specs, dict):
        raise BadRequest("extra_specs must be an object", type="InvalidInput")
    specs = {str(k): str(v) if isinstance(v, (str, bool, int)) else v
             for k, v in specs.items()}
    if creating and DHSS not in specs:
        raise BadRequest(f"Required extra specification {DHSS} is missing",
                         type="InvalidShareType")
    if DHSS in specs and spec_true(specs[DHSS]):
        raise BadRequest(f"vmflow supports {DHSS}=False only: it runs no share servers",
                         type="InvalidShareType")
    return specs


def visible_type(session: Session, auth: AuthContext, type_id: str) -> ShareType:
    try:
        return service.find(session, auth, type_id)
    except NotFound:
        raise NotFound(f"Share type {type_id} could not be found.") from None


@api.get("/types")
def list_types(request: Request, session: SessionDep, auth: OsAuthDep,
               v: MicroversionDep) -> dict[str, Any]:
    wanted = request.query_params.get("is_public", "true").lower()
    rows = service.listed(session, auth)
    if wanted != "all":
        public = flag(wanted, "is_public")
        rows = [t for t in rows if t.is_public == public]
    shown = [view(t, v) for t in rows]
    return {"share_types": shown, "volume_types": shown}


@api.get("/types/default")
def default_type(session: SessionDep, auth: OsAuthDep, v: MicroversionDep) -> dict[str, Any]:
    t = session.exec(select(ShareType).where(ShareType.name == DEFAULT_SHARE_TYPE)).first()
    if t is None:
        raise NotFound("Default share type not found")
    return one(t, v)


@api.get("/types/{type_id}")
def show_type(type_id: str, session: SessionDep, auth: OsAuthDep,
              v: MicroversionDep) -> dict[str, Any]:
    return one(visible_type(session, auth, type_id), v)


@api.post("/types")
def create_type(body: dict[str, Any], session: SessionDep, auth: OsAdminDep,
                v: MicroversionDep) -> dict[str, Any]:
    fields = body.get("share_type", body.get("volume_type"))
    if not isinstance(fields, dict):
        raise BadRequest("a share_type object is expected", type="InvalidInput")
    is_public = fields.get("share_type_access:is_public",
                           fields.get("os-share-type-access:is_public", True))
    description = fields.get("description")
    if description is not None and (not isinstance(description, str) or
                                    len(description) > 255):
        raise BadRequest("description must be a string of at most 255 characters",
                         type="InvalidInput")
    try:
        create = ShareTypeCreate.model_validate({
            "name": fields.get("name"), "is_public": flag(is_public, "is_public"),
            "extra_specs": checked_specs(fields.get("extra_specs", {}), creating=True)})
    except ValidationError as e:
        raise BadRequest("Invalid share type: " + "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()),
            type="InvalidShareType") from None
    return one(service.create(session, auth, create, None, description), v)


@api.delete("/types/{type_id}", status_code=202)
def delete_type(type_id: str, session: SessionDep, auth: OsAdminDep) -> Response:
    service.delete(session, auth, visible_type(session, auth, type_id).id, None)
    return Response(status_code=202)


@api.get("/types/{type_id}/extra_specs")
def list_extra_specs(type_id: str, session: SessionDep, auth: OsAuthDep) -> dict[str, Any]:
    return {"extra_specs": dict(visible_type(session, auth, type_id).extra_specs or {})}


@api.get("/types/{type_id}/extra_specs/{key}")
def show_extra_spec(type_id: str, key: str, session: SessionDep,
                    auth: OsAuthDep) -> dict[str, Any]:
    specs = visible_type(session, auth, type_id).extra_specs or {}
    if key not in specs:
        raise NotFound(f"Share type {type_id} has no extra spec {key}.")
    return {key: specs[key]}


@api.post("/types/{type_id}/extra_specs")
def set_extra_specs(type_id: str, body: dict[str, Any], session: SessionDep,
                    auth: OsAdminDep) -> dict[str, Any]:
    t = visible_type(session, auth, type_id)
    specs = checked_specs(body.get("extra_specs"), creating=False)
    try:  # the same checks as on create (lengths, boolean specs)
        ShareTypeCreate.model_validate({"name": t.name, "extra_specs": specs})
    except ValidationError as e:
        raise BadRequest("Invalid extra specs: " + "; ".join(
            err["msg"] for err in e.errors()), type="InvalidInput") from None
    service.set_extra_specs(session, t, specs)
    return {"extra_specs": specs}


@api.delete("/types/{type_id}/extra_specs/{key}", status_code=202)
def unset_extra_spec(type_id: str, key: str, session: SessionDep,
                     auth: OsAdminDep) -> Response:
    t = visible_type(session, auth, type_id)
    if key == DHSS:
        raise Forbidden(f"Extra spec {DHSS} is a required share type extra spec")
    service.unset_extra_spec(session, t, key)
    return Response(status_code=202)

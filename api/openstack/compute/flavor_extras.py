"""Nova's flavor extra specs (/flavors/{id}/os-extra_specs[/{key}]) and access lists
(GET /flavors/{id}/os-flavor-access, POST /flavors/{id}/action addTenantAccess /
removeTenantAccess) over api/services/flavors.py. Anyone who sees a flavor reads its
extra specs; changing them and the access lists is for admins."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Response
from sqlmodel import Session

from api.auth import AuthContext
from api.deps import SessionDep
from api.errors import BadRequest, Conflict, NotFound
from api.openstack.common import OsAdminDep, OsAuthDep
from api.openstack.compute.flavors import by_id
from api.openstack.compute.listing import PREFIX
from api.services import flavors

router = APIRouter(prefix=PREFIX)

SPEC_KEY = re.compile(r"^[a-zA-Z0-9-_:. ]{1,255}$")


def _specs(body: Any, what: str = "extra_specs") -> dict[str, str]:
    """Nova's extra specs: keys of [a-zA-Z0-9-_:. ], values strings (numbers and
    booleans are turned into strings, as Nova does) of at most 255 characters."""
    if not isinstance(body, dict):
        raise BadRequest(f"Invalid input for field/attribute {what}: an object is required")
    out = {}
    for key, value in body.items():
        if not isinstance(key, str) or not SPEC_KEY.match(key):
            raise BadRequest(f"Invalid input for field/attribute {what}. Key {key!r} does "
                             "not match '^[a-zA-Z0-9-_:. ]{1,255}$'")
        if isinstance(value, bool | int | float) and not isinstance(value, str):
            value = str(value)
        if not isinstance(value, str) or len(value) > 255 or "\x00" in value:
            raise BadRequest(f"Invalid input for field/attribute {what}. Value of {key!r} "
                             "must be a string of at most 255 characters")
        out[key] = value
    return out


@router.get("/flavors/{flavor_id}/os-extra_specs")
def list_extra_specs(flavor_id: str, session: SessionDep, auth: OsAuthDep) -> dict[str, Any]:
    return {"extra_specs": dict(by_id(session, auth, flavor_id).extra_specs or {})}


@router.post("/flavors/{flavor_id}/os-extra_specs")
def create_extra_specs(flavor_id: str, body: dict[str, Any], session: SessionDep,
                       auth: OsAdminDep) -> dict[str, Any]:
    """These keys set, the others kept; answers the ones given (as Nova)."""
    if set(body) != {"extra_specs"}:
        raise BadRequest("Invalid input for field/attribute: the body is "
                         "{\"extra_specs\": {...}}")
    specs = _specs(body["extra_specs"])
    flavors.set_extra_specs(session, auth, by_id(session, auth, flavor_id).id, specs)
    return {"extra_specs": specs}


@router.get("/flavors/{flavor_id}/os-extra_specs/{key}")
def show_extra_spec(flavor_id: str, key: str, session: SessionDep,
                    auth: OsAuthDep) -> dict[str, Any]:
    specs = by_id(session, auth, flavor_id).extra_specs or {}
    if key not in specs:
        raise NotFound(f"Flavor {flavor_id} has no extra specs with key {key}.")
    return {key: specs[key]}


@router.put("/flavors/{flavor_id}/os-extra_specs/{key}")
def update_extra_spec(flavor_id: str, key: str, body: dict[str, Any], session: SessionDep,
                      auth: OsAdminDep) -> dict[str, Any]:
    """The body is {key: value} for exactly the key in the path."""
    specs = _specs(body, key)
    if list(specs) != [key]:
        raise BadRequest("Request body and URI mismatch")
    flavors.set_extra_specs(session, auth, by_id(session, auth, flavor_id).id, specs)
    return specs


@router.delete("/flavors/{flavor_id}/os-extra_specs/{key}")
def delete_extra_spec(flavor_id: str, key: str, session: SessionDep,
                      auth: OsAdminDep) -> Response:
    flavors.unset_extra_spec(session, auth, by_id(session, auth, flavor_id).id, key)
    return Response(status_code=200)


# --- access lists --------------------------------------------------------------------


def _access(session: Session, auth: AuthContext, flavor_id: str) -> dict[str, Any]:
    flavor = by_id(session, auth, flavor_id)
    listed = flavors.access_list(session, flavor).flavor_access
    return {"flavor_access": [{"flavor_id": a.flavor_id, "tenant_id": a.project_id}
                              for a in listed]}


@router.get("/flavors/{flavor_id}/os-flavor-access")
def list_flavor_access(flavor_id: str, session: SessionDep, auth: OsAdminDep
                       ) -> dict[str, Any]:
    """404 for a public flavor, as Nova: it has no access list."""
    if by_id(session, auth, flavor_id).is_public:
        raise NotFound("Access list not available for public flavors.")
    return _access(session, auth, flavor_id)


@router.post("/flavors/{flavor_id}/action")
def flavor_action(flavor_id: str, body: dict[str, Any], session: SessionDep,
                  auth: OsAdminDep) -> dict[str, Any]:
    """{"addTenantAccess": {"tenant": p}} or {"removeTenantAccess": {"tenant": p}}:
    the access list after the change."""
    if len(body) != 1 or next(iter(body)) not in ("addTenantAccess", "removeTenantAccess"):
        raise BadRequest("There is no such action: the body is {\"addTenantAccess\": "
                         "{\"tenant\": ...}} or {\"removeTenantAccess\": {\"tenant\": ...}}")
    action, args = next(iter(body.items()))
    tenant = args.get("tenant") if isinstance(args, dict) else None
    if not isinstance(tenant, str) or not tenant.strip() or len(tenant) > 255:
        raise BadRequest(f"Invalid input for field/attribute {action}: 'tenant' is required")
    flavor = by_id(session, auth, flavor_id)
    if flavor.is_public:
        raise Conflict(f"Flavor {flavor_id} is public: it has no access list.")
    if action == "addTenantAccess":
        flavors.add_access(session, auth, flavor.id, tenant, None)
    else:
        flavors.remove_access(session, auth, flavor.id, tenant, None)
    return _access(session, auth, flavor_id)

"""Nova's flavors (GET/POST/PUT/DELETE /flavors, /flavors/detail) over
api/services/flavors.py. Extra specs and access lists are in flavor_extras.py.

Views per microversion: `description` from 2.55, `extra_specs` in the body from 2.61,
`swap` "" for none before 2.75 and 0 from it. vmflow flavors have no swap or ephemeral
disk and no rxtx factor: a create asking for one is refused (400) rather than shown
with a value vmflow would not honour (docs/decisions.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import Field, StringConstraints
from sqlmodel import Session
from starlette.exceptions import HTTPException

from api.auth import AuthContext
from api.deps import SessionDep
from api.errors import BadRequest, NotFound
from api.openstack.common import Lenient, OsAdminDep, OsAuthDep
from api.openstack.compute.listing import PREFIX, checked, int_param, links, page
from api.openstack.microversion import MicroversionDep, Version
from api.schemas.common import Name
from api.schemas.flavors import FlavorCreate
from api.services import flavors
from vmflow.models import Flavor

router = APIRouter(prefix=PREFIX)

DESCRIPTION = Version(2, 55)
EXTRA_SPECS = Version(2, 61)
SWAP_ZERO = Version(2, 75)
# Nova's ^(?! )[a-zA-Z0-9. _-]+(?<! )$ without look-arounds (pydantic's regex engine)
FlavorId = Annotated[str, StringConstraints(min_length=1, max_length=255,
                                            pattern=r"^[a-zA-Z0-9._-]([a-zA-Z0-9. _-]*"
                                                    r"[a-zA-Z0-9._-])?$")]
Description = Annotated[str, StringConstraints(max_length=65535)]
# Nova's sort keys -> the column vmflow has; the others (swap, rxtx_factor, ...) are one
# value for every vmflow flavor, so they sort as the default does
SORT_KEYS: dict[str, Any] = {
    "flavorid": lambda f: f.id, "id": lambda f: f.id, "name": lambda f: f.name,
    "memory_mb": lambda f: f.ram_mb, "vcpus": lambda f: f.vcpus, "root_gb": lambda f: f.disk_gb,
    "is_public": lambda f: f.is_public, "description": lambda f: f.description or "",
}
CONSTANT_KEYS = ("created_at", "updated_at", "disabled", "ephemeral_gb", "rxtx_factor",
                 "swap", "vcpu_weight")


class NewFlavor(Lenient):
    name: Name
    id: FlavorId | None = None  # null (OSC) or absent: generated
    ram: int = Field(ge=1)
    vcpus: int = Field(ge=1)
    disk: int = Field(ge=0)
    swap: int | None = Field(default=0, ge=0)
    ephemeral: int = Field(default=0, ge=0, alias="OS-FLV-EXT-DATA:ephemeral")
    rxtx_factor: float = Field(default=1.0, gt=0)
    is_public: bool = Field(default=True, alias="os-flavor-access:is_public")
    description: Description | None = None


class FlavorCreateBody(Lenient):
    flavor: NewFlavor


class FlavorUpdate(Lenient):
    description: Description | None


class FlavorUpdateBody(Lenient):
    flavor: FlavorUpdate


def summary(request: Request, f: Flavor, v: Version) -> dict[str, Any]:
    out: dict[str, Any] = {"id": f.id, "name": f.name, "links": links(request, "flavors", f.id)}
    if v >= DESCRIPTION:
        out["description"] = f.description
    return out


def detail(request: Request, f: Flavor, v: Version) -> dict[str, Any]:
    out = summary(request, f, v) | {
        "ram": f.ram_mb, "vcpus": f.vcpus, "disk": f.disk_gb,
        "swap": 0 if v >= SWAP_ZERO else "", "OS-FLV-EXT-DATA:ephemeral": 0,
        "OS-FLV-DISABLED:disabled": False, "os-flavor-access:is_public": f.is_public,
        "rxtx_factor": 1.0}
    if v >= EXTRA_SPECS:
        out["extra_specs"] = dict(f.extra_specs or {})
    return out


def by_id(session: Session, auth: AuthContext, flavor_id: str) -> Flavor:
    """Nova looks flavors up by id only (clients then search the list by name)."""
    flavor = flavors.find_flavor(session, auth, flavor_id)
    if flavor is None or flavor.id != flavor_id:
        raise NotFound(f"Flavor {flavor_id} could not be found.")
    return flavor


def _is_public_filter(request: Request, auth: AuthContext) -> bool | None:
    """Nova: admins see public ones unless is_public says none (all) or false; others
    always see the public ones and those their project was given."""
    if not auth.is_admin:
        return None
    value = request.query_params.get("is_public")
    if value is None:
        return True
    if value.lower() == "none":
        return None
    if value.lower() in ("true", "1", "yes", "on", "t", "y"):
        return True
    if value.lower() in ("false", "0", "no", "off", "f", "n"):
        return False
    raise BadRequest(f"Invalid is_public filter [{value}]")


def _sorted(request: Request, rows: list[Flavor]) -> list[Flavor]:
    key = request.query_params.get("sort_key", "flavorid")
    direction = request.query_params.get("sort_dir", "asc")
    if key not in SORT_KEYS and key not in CONSTANT_KEYS:
        raise BadRequest(f"Invalid input for query parameters sort_key. Value: {key}.")
    if direction not in ("asc", "desc"):
        raise BadRequest(f"Invalid input for query parameters sort_dir. Value: {direction}.")
    rows = sorted(rows, key=lambda f: f.id)  # ties in the key: flavorid order, as Nova
    return sorted(rows, key=SORT_KEYS.get(key, SORT_KEYS["flavorid"]),
                  reverse=direction == "desc")


def _listed(request: Request, session: Session, auth: AuthContext
            ) -> tuple[list[Flavor], list[dict[str, str]] | None]:
    public = _is_public_filter(request, auth)
    min_disk, min_ram = int_param(request, "minDisk"), int_param(request, "minRam")
    rows = [f for f in flavors.list_flavors(session, auth)
            if (public is None or f.is_public == public)
            and (min_disk is None or f.disk_gb >= min_disk)
            and (min_ram is None or f.ram_mb >= min_ram)]
    return page(request, _sorted(request, rows), lambda f: f.id, "flavors")


def _listing(key: str, items: list[dict[str, Any]],
             next_link: list[dict[str, str]] | None) -> dict[str, Any]:
    body: dict[str, Any] = {key: items}
    if next_link:
        body[f"{key}_links"] = next_link
    return body


@router.get("/flavors")
def list_flavors(request: Request, session: SessionDep, auth: OsAuthDep,
                 v: MicroversionDep) -> dict[str, Any]:
    rows, nxt = _listed(request, session, auth)
    return _listing("flavors", [summary(request, f, v) for f in rows], nxt)


@router.get("/flavors/detail")
def list_flavors_detail(request: Request, session: SessionDep, auth: OsAuthDep,
                        v: MicroversionDep) -> dict[str, Any]:
    rows, nxt = _listed(request, session, auth)
    return _listing("flavors", [detail(request, f, v) for f in rows], nxt)


@router.get("/flavors/{flavor_id}")
def show_flavor(flavor_id: str, request: Request, session: SessionDep, auth: OsAuthDep,
                v: MicroversionDep) -> dict[str, Any]:
    return {"flavor": detail(request, by_id(session, auth, flavor_id), v)}


@router.post("/flavors")
def create_flavor(body: dict[str, Any], request: Request, session: SessionDep,
                  auth: OsAdminDep, v: MicroversionDep) -> dict[str, Any]:
    """200, as Nova; an id of null is generated."""
    new = checked(FlavorCreateBody, body).flavor
    if new.description is not None and v < DESCRIPTION:
        raise BadRequest("Invalid input for field/attribute flavor. Additional properties "
                         "are not allowed ('description' was unexpected)")
    if new.swap or new.ephemeral or new.rxtx_factor != 1.0:
        raise BadRequest("vmflow flavors have no swap or ephemeral disk and no rxtx factor: "
                         "swap and OS-FLV-EXT-DATA:ephemeral must be 0, rxtx_factor 1.0")
    made = flavors.create_flavor(session, auth, checked(FlavorCreate, {
        "name": new.name, "vcpus": new.vcpus, "ram": new.ram, "disk": new.disk,
        "is_public": new.is_public}), None, flavor_id=new.id, description=new.description)
    return {"flavor": detail(request, by_id(session, auth, made.id), v)}


@router.put("/flavors/{flavor_id}")
def update_flavor(flavor_id: str, body: dict[str, Any], request: Request,
                  session: SessionDep, auth: OsAdminDep, v: MicroversionDep) -> dict[str, Any]:
    """Only the description, from 2.55 (before: no such method, 405 as Nova)."""
    if v < DESCRIPTION:
        raise _method_not_allowed()
    update = checked(FlavorUpdateBody, body).flavor
    flavor = by_id(session, auth, flavor_id)
    flavors.set_description(session, auth, flavor.id, update.description)
    return {"flavor": detail(request, flavor, v)}


@router.delete("/flavors/{flavor_id}", status_code=202)
def delete_flavor(flavor_id: str, session: SessionDep, auth: OsAdminDep) -> Response:
    """409 while a server uses it (vmflow's operations read the flavor row)."""
    flavors.delete_flavor(session, auth, by_id(session, auth, flavor_id).id, None)
    return Response(status_code=202)


def _method_not_allowed() -> Exception:
    return HTTPException(405, "The method specified is not allowed for this resource.")

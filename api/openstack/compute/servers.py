"""Nova's servers: POST/GET /servers, GET /servers/detail, GET/PUT/DELETE
/servers/{id}, over api/services/servers.py (the same create, lookup and delete the
/v1 routes use). Request bodies as the clients send them (extra keys ignored,
CLIENTS.md 0.9); views per microversion (server_views.py); filters and paging as
nova/api/openstack/compute/servers.py has them (server_filters.py)."""

from __future__ import annotations

import secrets
import uuid
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError

from api.deps import MaybeTemporalDep, SessionDep, TemporalDep
from api.errors import BadRequest, NotFound
from api.openstack.common import Lenient, OsAuthDep, OsWriterDep
from api.openstack.compute import server_views as views
from api.openstack.compute.server_filters import page
from api.openstack.microversion import MicroversionDep, Version
from api.schemas.servers import ServerCreate
from api.services import servers
from vmflow.models import Instance

router = APIRouter(prefix="/v2.1/servers", tags=["compute servers"])

# Nova (CONF.api.enable_instance_password, default True) answers create, rebuild and
# rescue with an adminPass; Tempest's default config expects it. vmflow injects no
# password (nor does Nova's libvirt driver by default): the value is the one Nova
# would report, not a credential.
ENABLE_INSTANCE_PASSWORD = True


def admin_pass(given: str | None) -> str:
    return given or secrets.token_urlsafe(9)


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], data: Any, *loc: str) -> M:
    """A body part validated as the model: 400 (Nova's badRequest) if it is not."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise RequestValidationError(
            [{**err, "loc": ("body", *loc, *err["loc"])} for err in e.errors()]) from None


def server_or_404(session: SessionDep, auth: Any, server_id: str) -> Instance:
    """Nova: 404 for a malformed id as for an unknown or foreign one."""
    try:
        uuid.UUID(server_id)
    except ValueError:
        raise NotFound(f"Instance {server_id} could not be found.") from None
    try:
        return servers.get_instance(session, auth, server_id)
    except NotFound:
        raise NotFound(f"Instance {server_id} could not be found.") from None


class NovaServerCreate(Lenient):
    name: str
    imageRef: str | None = None  # noqa: N815 (Nova's names)
    flavorRef: str | int  # noqa: N815
    key_name: str | None = None
    user_data: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    networks: str | list[dict[str, Any]] | None = None
    block_device_mapping_v2: list[dict[str, Any]] | None = None
    security_groups: list[dict[str, Any]] | None = None
    description: str | None = None
    accessIPv4: str | None = None  # noqa: N815
    accessIPv6: str | None = None  # noqa: N815
    adminPass: str | None = None  # noqa: N815
    min_count: int = 1
    max_count: int = 1


def _boot_image(body: NovaServerCreate) -> str:
    """imageRef, else the uuid of an image-to-local block device mapping (what OSC
    sends next to imageRef); vmflow has no volumes, so anything else is refused."""
    image = body.imageRef or None
    for bdm in body.block_device_mapping_v2 or []:
        source, dest = bdm.get("source_type"), bdm.get("destination_type", "local")
        if source == "image" and dest == "local":
            image = image or bdm.get("uuid")
        elif source == "blank" and dest == "local":
            continue  # an ephemeral or swap disk: the flavor's (none here)
        else:
            raise BadRequest(f"block device mapping {source}->{dest} is not supported: "
                             "vmflow boots from an image to a local disk")
    if not image:
        raise BadRequest("Invalid input: imageRef (or an image block device mapping) "
                         "is required")
    return str(image)


def _networks(body: NovaServerCreate, v: Version, sent: bool) -> Any:
    """Nova's rules: from 2.37 `networks` is required and may be "auto" or "none";
    before, a list (empty: none here, vmflow's default)."""
    nets = body.networks
    if v >= Version(2, 37):
        if not sent:
            raise BadRequest("Invalid input for field/attribute networks. 'networks' is "
                             "a required property")
        if isinstance(nets, str) and nets not in ("auto", "none"):
            raise BadRequest(f"Invalid input for field/attribute networks: {nets!r}")
    elif isinstance(nets, str):
        raise BadRequest("Invalid input for field/attribute networks: a list is "
                         "required before microversion 2.37")
    if isinstance(nets, list):
        out = []
        for item in nets:
            out.append({k: item[k] for k in ("uuid", "port", "fixed_ip") if k in item})
        return out or None
    return None if nets in (None, "none") else nets


def vmflow_body(body: NovaServerCreate, v: Version, raw: dict[str, Any]) -> ServerCreate:
    """The /v1 create body the Nova one means (400 if it means something vmflow
    cannot do)."""
    if body.min_count != 1 or body.max_count < 1:
        raise BadRequest("vmflow creates one server per request: min_count must be 1")
    groups = None if body.security_groups is None else [
        {"name": g.get("name")} for g in body.security_groups]
    data: dict[str, Any] = {
        "name": body.name, "image": _boot_image(body), "flavor": str(body.flavorRef),
        "key_name": body.key_name, "metadata": body.metadata, "user_data": body.user_data,
        "networks": _networks(body, v, "networks" in raw),
    }
    if groups is not None and data["networks"] is not None:
        data["security_groups"] = groups
    return parse(ServerCreate, data, "server")


@router.post("", status_code=202)
async def create_server(request: Request, response: Response, session: SessionDep,
                        auth: OsWriterDep, client: TemporalDep, v: MicroversionDep,
                        body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    raw = body.get("server")
    if not isinstance(raw, dict):
        raise BadRequest("Invalid input: the body must be {\"server\": {...}}")
    nova = parse(NovaServerCreate, raw, "server")
    if nova.description is not None and v < Version(2, 19):
        raise BadRequest("Invalid input: description needs microversion 2.19")
    attrs = {"description": nova.description, "access_ip_v4": nova.accessIPv4,
             "access_ip_v6": nova.accessIPv6}
    inst, _ = await servers.create(client, session, auth, vmflow_body(nova, v, raw), None,
                                   attrs={k: x for k, x in attrs.items() if x is not None})
    link = views.links(request, "servers", inst.id)
    server: dict[str, Any] = {
        "id": inst.id, "links": link, "OS-DCF:diskConfig": "MANUAL",
        "security_groups": [{"name": g.get("name")} for g in nova.security_groups or []]
        or [{"name": "default"}]}
    if ENABLE_INSTANCE_PASSWORD:
        server["adminPass"] = admin_pass(nova.adminPass)
    response.headers["Location"] = link[0]["href"]
    return {"server": server}


@router.get("")
async def list_servers(request: Request, session: SessionDep, auth: OsAuthDep,
                       v: MicroversionDep) -> dict[str, Any]:
    insts, next_link = page(request, session, auth)
    ctx = views.ViewContext(request, v, auth)
    out: dict[str, Any] = {"servers": [views.brief(ctx, i) for i in insts]}
    if next_link:
        out["servers_links"] = [{"rel": "next", "href": next_link}]
    return out


@router.get("/detail")
async def list_servers_detail(request: Request, session: SessionDep, auth: OsAuthDep,
                              client: MaybeTemporalDep, v: MicroversionDep) -> dict[str, Any]:
    insts, next_link = page(request, session, auth)
    ctx = await views.context(request, v, auth, session, client, insts)
    out: dict[str, Any] = {"servers": [views.detail(ctx, i, show=False) for i in insts]}
    if next_link:
        out["servers_links"] = [{"rel": "next", "href": next_link}]
    return out


@router.get("/{server_id}")
async def show_server(server_id: str, request: Request, session: SessionDep,
                      auth: OsAuthDep, client: MaybeTemporalDep,
                      v: MicroversionDep) -> dict[str, Any]:
    inst = server_or_404(session, auth, server_id)
    ctx = await views.context(request, v, auth, session, client, [inst])
    return {"server": views.detail(ctx, inst)}


class NovaServerUpdate(Lenient):
    name: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    description: Annotated[str, Field(max_length=255)] | None = None
    accessIPv4: str | None = None  # noqa: N815
    accessIPv6: str | None = None  # noqa: N815


@router.put("/{server_id}")
async def update_server(server_id: str, request: Request, session: SessionDep,
                        auth: OsWriterDep, client: MaybeTemporalDep, v: MicroversionDep,
                        body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    raw = body.get("server")
    if not isinstance(raw, dict):
        raise BadRequest("Invalid input: the body must be {\"server\": {...}}")
    if "description" in raw and v < Version(2, 19):
        raise BadRequest("Invalid input: description needs microversion 2.19")
    upd = parse(NovaServerUpdate, raw, "server")
    if upd.name is not None and upd.name != upd.name.strip():
        raise BadRequest("Invalid input for field/attribute name: leading or trailing "
                         "whitespace")
    changes: dict[str, str | None] = {}
    if "name" in raw:
        if upd.name is None:
            raise BadRequest("Invalid input for field/attribute name: None is not a string")
        changes["name"] = upd.name
    if "description" in raw:
        changes["description"] = upd.description
    for key, column in (("accessIPv4", "access_ip_v4"), ("accessIPv6", "access_ip_v6")):
        if key in raw:
            changes[column] = _access_ip(key, raw[key])
    server_or_404(session, auth, server_id)
    inst = servers.update(session, auth, server_id, changes)
    ctx = await views.context(request, v, auth, session, client, [inst])
    return {"server": views.updated(ctx, inst)}


def _access_ip(key: str, value: Any) -> str | None:
    import ipaddress
    if value in (None, ""):
        return None
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        raise BadRequest(f"Invalid input for field/attribute {key}: {value!r}") from None
    if (key == "accessIPv4") != (addr.version == 4):
        raise BadRequest(f"Invalid input for field/attribute {key}: {value!r}")
    return str(addr)


@router.delete("/{server_id}", status_code=204)
async def delete_server(server_id: str, session: SessionDep, auth: OsWriterDep,
                        client: TemporalDep) -> Response:
    """As /v1's delete (api/services/servers.py delete)."""
    inst = server_or_404(session, auth, server_id)
    await servers.delete_server(client, session, auth, inst, None)
    return Response(status_code=204)

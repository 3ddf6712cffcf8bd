"""Nova's legacy image proxy (/images, /images/detail, /images/{id} and its metadata)
over api/services/images.py, served up to 2.35 and 404 from 2.36 on, as Nova. Image
metadata is the image's extra properties; changing it is its owner's (or admin's)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlmodel import Session
from starlette.exceptions import HTTPException

from api.auth import AuthContext
from api.deps import SessionDep
from api.errors import BadRequest, NotFound
from api.openstack.common import OsAuthDep, OsWriterDep
from api.openstack.compute.listing import PREFIX, base, checked, int_param, links, page
from api.openstack.microversion import MicroversionDep, Version
from api.schemas.images import ImageUpdate
from api.services import images
from vmflow.models import Image

router = APIRouter(prefix=PREFIX)

LAST = Version(2, 35)
STATUS = {"active": "ACTIVE", "queued": "SAVING", "saving": "SAVING", "importing": "SAVING",
          "uploading": "SAVING", "deleted": "DELETED", "pending_delete": "DELETED",
          "killed": "ERROR", "error": "ERROR"}
PROGRESS = {"ACTIVE": 100, "SAVING": 25}


def _served(v: Version) -> None:
    if v > LAST:
        raise HTTPException(404, "The resource could not be found.")


def _time(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _int_prop(image: Image, key: str) -> int:
    try:
        return int((image.properties or {}).get(key, 0))
    except (TypeError, ValueError):
        return 0


def _links(request: Request, image: Image) -> list[dict[str, str]]:
    glance = base(request).replace("/compute/", "/image/")
    return links(request, "images", image.id) + [
        {"rel": "alternate", "type": "application/vnd.openstack.image",
         "href": f"{glance}images/{image.id}"}]


def summary(request: Request, image: Image) -> dict[str, Any]:
    return {"id": image.id, "name": image.name, "links": _links(request, image)}


def detail(request: Request, image: Image) -> dict[str, Any]:
    status = STATUS.get(image.status, "UNKNOWN")
    props = dict(image.properties or {})
    out = summary(request, image) | {
        "status": status, "progress": PROGRESS.get(status, 0),
        "created": _time(image.created_at), "updated": _time(image.updated_at),
        "minDisk": _int_prop(image, "min_disk"), "minRam": _int_prop(image, "min_ram"),
        "metadata": props, "OS-EXT-IMG-SIZE:size": image.size}
    server = props.get("instance_uuid")
    if isinstance(server, str) and server:
        out["server"] = {"id": server, "links": links(request, "servers", server)}
    return out


def _listed(request: Request, session: Session, auth: AuthContext) -> list[Image]:
    q = request.query_params
    min_disk, min_ram = int_param(request, "minDisk"), int_param(request, "minRam")
    wanted = q.get("status", "").upper() or None
    rows = [i for i in images.listed(session, auth, "accepted", None)
            if q.get("name") in (None, i.name)
            and wanted in (None, STATUS.get(i.status, "UNKNOWN"))
            and (min_disk is None or _int_prop(i, "min_disk") >= min_disk)
            and (min_ram is None or _int_prop(i, "min_ram") >= min_ram)]
    return rows


def _page(request: Request, rows: list[Image], items: list[dict[str, Any]],
          nxt: list[dict[str, str]] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"images": items}
    if nxt:
        body["images_links"] = nxt
    return body


@router.get("/images")
def list_images(request: Request, session: SessionDep, auth: OsAuthDep,
                v: MicroversionDep) -> dict[str, Any]:
    _served(v)
    rows, nxt = page(request, _listed(request, session, auth), lambda i: i.id, "images")
    return _page(request, rows, [summary(request, i) for i in rows], nxt)


@router.get("/images/detail")
def list_images_detail(request: Request, session: SessionDep, auth: OsAuthDep,
                       v: MicroversionDep) -> dict[str, Any]:
    _served(v)
    rows, nxt = page(request, _listed(request, session, auth), lambda i: i.id, "images/detail")
    return _page(request, rows, [detail(request, i) for i in rows], nxt)


@router.get("/images/{image_id}")
def show_image(image_id: str, request: Request, session: SessionDep, auth: OsAuthDep,
               v: MicroversionDep) -> dict[str, Any]:
    _served(v)
    return {"image": detail(request, images.get_image(session, auth, image_id))}


@router.delete("/images/{image_id}", status_code=204)
def delete_image(image_id: str, session: SessionDep, auth: OsWriterDep,
                 v: MicroversionDep) -> Response:
    _served(v)
    images.delete_image(session, auth, image_id, None)
    return Response(status_code=204)


# --- metadata ------------------------------------------------------------------------


def _metadata(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key)
    if set(body) != {key} or not isinstance(value, dict):
        raise BadRequest(f"Malformed request body: the body is {{\"{key}\": {{...}}}}")
    return value


def _update(session: Session, auth: AuthContext, image_id: str, props: dict[str, Any],
            remove: list[str]) -> dict[str, Any]:
    update = checked(ImageUpdate, {"properties": props, "remove_properties": remove})
    return dict(images.update(session, auth, image_id, update).properties or {})


@router.get("/images/{image_id}/metadata")
def list_image_metadata(image_id: str, session: SessionDep, auth: OsAuthDep,
                        v: MicroversionDep) -> dict[str, Any]:
    _served(v)
    return {"metadata": dict(images.get_image(session, auth, image_id).properties or {})}


@router.post("/images/{image_id}/metadata")
def update_image_metadata(image_id: str, body: dict[str, Any], session: SessionDep,
                          auth: OsWriterDep, v: MicroversionDep) -> dict[str, Any]:
    """These keys set, the others kept: the whole metadata after."""
    _served(v)
    return {"metadata": _update(session, auth, image_id, _metadata(body, "metadata"), [])}


@router.put("/images/{image_id}/metadata")
def replace_image_metadata(image_id: str, body: dict[str, Any], session: SessionDep,
                           auth: OsWriterDep, v: MicroversionDep) -> dict[str, Any]:
    """Exactly these keys."""
    _served(v)
    new = _metadata(body, "metadata")
    old = images.get_image(session, auth, image_id).properties or {}
    return {"metadata": _update(session, auth, image_id, new, [k for k in old if k not in new])}


@router.get("/images/{image_id}/metadata/{key}")
def show_image_meta(image_id: str, key: str, session: SessionDep, auth: OsAuthDep,
                    v: MicroversionDep) -> dict[str, Any]:
    _served(v)
    props = images.get_image(session, auth, image_id).properties or {}
    if key not in props:
        raise NotFound(f"Image {image_id} has no metadata with key {key}.")
    return {"meta": {key: props[key]}}


@router.put("/images/{image_id}/metadata/{key}")
def set_image_meta(image_id: str, key: str, body: dict[str, Any], session: SessionDep,
                   auth: OsWriterDep, v: MicroversionDep) -> dict[str, Any]:
    _served(v)
    meta = _metadata(body, "meta")
    if list(meta) != [key]:
        raise BadRequest("Request body and URI mismatch")
    props = _update(session, auth, image_id, meta, [])
    return {"meta": {key: props[key]}}


@router.delete("/images/{image_id}/metadata/{key}", status_code=204)
def delete_image_meta(image_id: str, key: str, session: SessionDep, auth: OsWriterDep,
                      v: MicroversionDep) -> Response:
    _served(v)
    if key not in (images.get_image(session, auth, image_id).properties or {}):
        raise NotFound(f"Image {image_id} has no metadata with key {key}.")
    _update(session, auth, image_id, {}, [key])
    return Response(status_code=204)

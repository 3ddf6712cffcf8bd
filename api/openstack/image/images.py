"""Glance v2 images: create, list, show, PATCH, delete, deactivate/reactivate, tags.
A facade over api/services/images.py (the same visibility rules and checks as /v1);
the JSON-patch logic is in image_patch.py, the list's filters in image_list.py."""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import APIRouter, Request, Response

from api.deps import SessionDep
from api.errors import BadRequest, Forbidden, NotFound
from api.openstack.common import OsAuthDep, OsWriterDep
from api.openstack.image import image_patch
from api.openstack.image.image_list import list_images
from api.openstack.image.image_patch import BASE, Change, check_key, check_values
from api.openstack.image.image_views import image_view
from api.services import images
from api.services.images import get_image, is_protected
from vmflow.models import Image

router = APIRouter(prefix="/v2/images")


async def json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError:
        raise BadRequest("Malformed JSON in request body.") from None


def _new_image(body: dict[str, Any]) -> Image:
    """The image a create body describes (Glance: base attributes by name, every other
    key an extra property); 400/403 as Glance for bad or read-only keys."""
    for key in body:
        if key in image_patch.DISALLOWED:
            raise Forbidden(f"Attribute '{key}' is read-only.")
        if key != "id" and key not in ("name", "visibility", "owner", "disk_format",
                                       "container_format", "min_disk", "min_ram",
                                       "protected", "os_hidden", "tags"):
            check_key(key)
    check_values(body)
    image_patch.check_formats(body.get("disk_format"), body.get("container_format"))
    extra = {k: v for k, v in body.items() if k not in BASE}
    for key in ("min_disk", "min_ram", "protected", "os_hidden"):
        if body.get(key):
            extra[key] = body[key]
    tags = list(dict.fromkeys(body.get("tags") or []))
    if tags:
        extra["tags"] = tags
    image = Image(name=body.get("name") or "", disk_format=body.get("disk_format") or "",
                  container_format=body.get("container_format") or "",
                  visibility=body.get("visibility") or "shared",  # Glance's default
                  owner=body.get("owner"), properties=extra)
    if body.get("id") is not None:
        image.id = str(uuid.UUID(body["id"]))
    return image


@router.post("", status_code=201)
async def create_image(request: Request, session: SessionDep,
                       auth: OsWriterDep) -> dict[str, Any]:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise BadRequest("Request body must be a JSON object.")
    return image_view(images.register(session, auth, _new_image(body)))


@router.get("")
def index(request: Request, session: SessionDep, auth: OsAuthDep) -> dict[str, Any]:
    return list_images(session, auth, request.query_params.multi_items())


@router.get("/{image_id}")
def show(image_id: str, session: SessionDep, auth: OsAuthDep) -> dict[str, Any]:
    return image_view(get_image(session, auth, image_id))


@router.patch("/{image_id}")
async def update(image_id: str, request: Request, session: SessionDep,
                 auth: OsWriterDep) -> Response:
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if content_type not in image_patch.CONTENT_TYPES:
        allowed = ", ".join(sorted(image_patch.CONTENT_TYPES))
        return Response(status_code=415, headers={"Accept-Patch": allowed},
                        content=json.dumps({"error": {
                            "code": 415, "title": "Unsupported Media Type",
                            "message": f"Image PATCH expects Content-Type one of: {allowed}"}}),
                        media_type="application/json")
    get_image(session, auth, image_id)  # 404 before 400 for an image the caller can't see
    changes = image_patch.parse(content_type, await json_body(request))
    image = images.edit(session, auth, image_id,
                        lambda row: image_patch.apply(row, changes, auth))
    return Response(json.dumps(image_view(image)), media_type="application/json")


@router.delete("/{image_id}", status_code=204)
def delete(image_id: str, session: SessionDep, auth: OsWriterDep) -> Response:
    image = get_image(session, auth, image_id)
    images.require_owner(image, auth, "delete it")
    if is_protected(image):  # Glance: 403 (vmflow's /v1 says 409)
        raise Forbidden(f"Image {image_id} is protected and cannot be deleted.")
    images.delete_image(session, auth, image_id, None)
    return Response(status_code=204)


@router.post("/{image_id}/actions/deactivate", status_code=204)
def deactivate(image_id: str, session: SessionDep, auth: OsWriterDep) -> Response:
    images.set_active(session, auth, image_id, active=False)
    return Response(status_code=204)


@router.post("/{image_id}/actions/reactivate", status_code=204)
def reactivate(image_id: str, session: SessionDep, auth: OsWriterDep) -> Response:
    images.set_active(session, auth, image_id, active=True)
    return Response(status_code=204)


@router.put("/{image_id}/tags/{tag}", status_code=204)
def add_tag(image_id: str, tag: str, session: SessionDep, auth: OsWriterDep) -> Response:
    def change(row: Image) -> None:
        tags = image_patch.writable(row)["tags"]
        check_values({"tags": [*tags, tag]} if tag not in tags else {"tags": [tag]})
        if tag not in tags:
            image_patch.apply(row, [Change("replace", "tags", [*tags, tag])], auth)
    images.edit(session, auth, image_id, change)
    return Response(status_code=204)


@router.delete("/{image_id}/tags/{tag}", status_code=204)
def delete_tag(image_id: str, tag: str, session: SessionDep, auth: OsWriterDep) -> Response:
    def change(row: Image) -> None:
        tags = image_patch.writable(row)["tags"]
        if tag not in tags:
            raise NotFound(f"Tag {tag} not found")
        image_patch.apply(row, [Change("replace", "tags", [t for t in tags if t != tag])],
                          auth)
    images.edit(session, auth, image_id, change)
    return Response(status_code=204)

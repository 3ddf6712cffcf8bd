"""Glance v2 image data: PUT /v2/images/{id}/file streams the body through exactly
the upload of /v1 (api/services/image_files.py: the same streaming into the store and
the same hostile-image inspection before the image becomes active); GET streams the
file back, 204 while the image has no data, 403 while it is deactivated."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse

from api.deps import SessionDep
from api.errors import BadRequest, Forbidden
from api.openstack.common import OsAuthDep, OsWriterDep
from api.services import image_files
from api.services.images import get_image

router = APIRouter(prefix="/v2/images")


@router.put("/{image_id}/file", status_code=204)
async def upload(image_id: str, request: Request, session: SessionDep,
                 auth: OsWriterDep) -> Response:
    image = get_image(session, auth, image_id)
    if image.status == "queued" and not (image.disk_format and image.container_format):
        raise BadRequest("Properties disk_format, container_format must be set prior to "
                         "saving data.")
    await image_files.upload(session, auth, image_id, request)
    return Response(status_code=204)


@router.get("/{image_id}/file", response_model=None)
def download(image_id: str, session: SessionDep, auth: OsAuthDep) -> Response:
    image = get_image(session, auth, image_id, member_status="accepted")
    if image.status == "deactivated":
        raise Forbidden("The requested image has been deactivated. Image data download is "
                        "forbidden.")
    if image.status != "active":
        return Response(status_code=204)  # no data (yet): Glance answers 204
    path, checksum = image_files.download(session, auth, image_id)
    return FileResponse(path, media_type="application/octet-stream")

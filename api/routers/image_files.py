"""Image data routes: upload, staged import, download.

An upload is streamed into the store and inspected before it becomes active; a host
that shares the store imports its staged copy. The logic and the reasoning behind it
are in api/services/image_files.py."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse

from api.deps import AuthDep, IdempotencyKey, SessionDep
from api.services import image_files
from api.services.operations import idempotency_guard
from vmflow.contracts.instances import CHECKSUM_HEADER

router = APIRouter(prefix="/v1/images", tags=["images"])


@router.put("/{image_id}/file", status_code=204)
async def upload_file(image_id: str, request: Request, session: SessionDep,
                      auth: AuthDep, idempotency_key: IdempotencyKey = None) -> Response:
    """The image's data as the raw body. 204 when active; 400 ImageRejected (the image
    is now in error, with the reason) when inspection refused it; 409 unless queued.
    A repeated Idempotency-Key of an upload that made the image active: 204, the body
    unread."""
    async with idempotency_guard(auth, idempotency_key):
        await image_files.upload(session, auth, image_id, request, idempotency_key)
    return Response(status_code=204)


@router.post("/{image_id}/import", status_code=204)
async def import_staged(image_id: str, request: Request, session: SessionDep,
                        auth: AuthDep, idempotency_key: IdempotencyKey = None) -> Response:
    """Hosts only: adopt the data a host wrote into <store>/staging/<id> instead of
    PUTting it (same inspection, a rename instead of a second copy). 404
    ImageNotStaged when there is no such file (the host then uploads with PUT); 204 for
    an image a previous call already made active."""
    async with idempotency_guard(auth, idempotency_key):
        await image_files.import_staged(session, auth, image_id, request, idempotency_key)
    return Response(status_code=204)


@router.get("/{image_id}/file")
def download_file(image_id: str, session: SessionDep, auth: AuthDep) -> FileResponse:
    """The data of an active image the caller may boot (hosts: any image), with its
    sha256 in X-Image-Checksum; the reader should verify it."""
    path, checksum = image_files.download(session, auth, image_id)
    headers = {CHECKSUM_HEADER: checksum} if checksum else None
    return FileResponse(path, media_type="application/octet-stream", headers=headers)

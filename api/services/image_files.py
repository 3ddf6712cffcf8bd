"""Image data: streamed upload with inspection, staged import, download.

The logic behind api/routers/image_files.py: upload (streamed into the store,
inspected before it becomes active) and download (hosts fetch images this way, with
the service token).

An upload takes a queued image to saving, streams the body into <store>/<id>.part
while hashing it, then inspects it (vmflow.image_inspect: nothing else has read it
yet): active with size, checksum and location, or error with the reason and no file
kept. A body over max_upload_gb or a broken connection puts the image back to queued,
as Glance does, so the upload can be retried.

A host that shares the store's file system (one machine, or the store on NFS) does
not PUT a snapshot: it renames its copy into <store>/staging/<id> and asks for an
import, which inspects the file where it lies (Glance's staging area, without the
second copy over HTTP). A host that hashed the copy while writing it sends that
sha256 along (X-Image-Checksum) and the file is not read again; hosts are trusted
as much as the bytes they wrote. Without it the import hashes the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import stat
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NoReturn

from fastapi import Request
from sqlmodel import Session, col, update

from api.auth import AuthContext
from api.errors import ApiError, BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge
from api.services.images import get_image, require_owner
from api.services.operations import find_idempotent, remember_key
from vmflow import image_inspect
from vmflow.contracts.instances import CHECKSUM_HEADER
from vmflow.models import Image, now
from vmflow.settings import get_settings

log = logging.getLogger(__name__)

SHA256_HEX = re.compile(r"[0-9a-f]{64}")
WRITE_BYTES = 4 << 20  # gather the body's small chunks into writes of this size


# who, the Idempotency-Key and the action ("upload", "import") a success is kept under
Key = tuple[AuthContext, str | None, str] | None


class _TooLarge(Exception):
    pass


def _set_status(session: Session, image_id: str, expect: str, *, key: Key = None,
                **values: Any) -> bool:
    """Move the image from `expect` to `values` atomically; False if it was not in
    `expect` any more (deleted meanwhile, or another upload won the race). With `key`
    (auth, Idempotency-Key, action) its record is committed with the move."""
    result = session.exec(update(Image)
                          .where(col(Image.id) == image_id, col(Image.status) == expect)
                          .values(updated_at=now(), **values))
    if key is not None and result.rowcount:
        remember_key(session, key[0], key[1], "image", image_id, key[2])
    session.commit()
    return bool(result.rowcount)


def _write(out: Any, h: Any, data: bytes) -> None:
    h.update(data)
    out.write(data)


async def _receive(request: Request, part: Path, limit: int) -> tuple[int, str]:
    """Stream the body into `part`; returns (size, sha256 hex)."""
    h = hashlib.sha256()
    size = 0
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as out:
        buf = bytearray()
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _TooLarge
            buf += chunk
            if len(buf) >= WRITE_BYTES:
                await asyncio.to_thread(_write, out, h, bytes(buf))
                buf.clear()
        await asyncio.to_thread(_write, out, h, bytes(buf))
        await asyncio.to_thread(os.fsync, out.fileno())
    return size, h.hexdigest()


async def upload(session: Session, auth: AuthContext, image_id: str,
                 request: Request, idempotency_key: str | None = None) -> None:
    """The image's data as the raw body. 204 when active; 400 ImageRejected (the image
    is now in error, with the reason) when inspection refused it; 409 unless queued.
    A repeated Idempotency-Key of an upload that went through: 204, nothing read."""
    s = get_settings()
    image = get_image(session, auth, image_id)
    if find_idempotent(session, auth, idempotency_key, "image", "upload", image_id):
        return
    if not auth.is_service:
        require_owner(image, auth, "upload its data")
    limit = s.max_upload_gb * 2**30
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the image is larger than the upload limit of "
                              f"{s.max_upload_gb} GB")
    if not _set_status(session, image_id, "queued", status="saving"):
        session.refresh(image)
        raise Conflict(f"image {image_id} is {image.status}, not queued: its data can be "
                       "uploaded once", type="ImageNotQueued")
    s.image_store.mkdir(parents=True, exist_ok=True)
    final, part = s.image_store / image_id, s.image_store / f"{image_id}.part"
    try:
        size, checksum = await _receive(request, part, limit)
    except BaseException as e:  # too large, client gone, disk full: nothing is kept
        part.unlink(missing_ok=True)
        requeued = _set_status(session, image_id, "saving", status="queued")
        if isinstance(e, _TooLarge):
            raise PayloadTooLarge(f"the image is larger than the upload limit of "
                                  f"{s.max_upload_gb} GB") from None
        if not requeued and isinstance(e, Exception):
            raise Conflict(f"image {image_id} was deleted during the upload") from None
        raise
    await _inspect_and_activate(session, image, part, final, size, checksum,
                                (auth, idempotency_key, "upload"))


def _reject(session: Session, image_id: str, part: Path, reason: str) -> NoReturn:
    """Inspection refused the data: nothing is kept, the image is in error (400)."""
    part.unlink(missing_ok=True)
    _set_status(session, image_id, "saving", status="error", fault=reason)
    raise BadRequest(f"image {image_id} was rejected: {reason}", type="ImageRejected")


async def _inspect_and_activate(session: Session, image: Image, part: Path, final: Path,
                                size: int, checksum: str, key: Key = None) -> None:
    """The data is complete in `part`: active, or error with the reason (400)."""
    s = get_settings()
    try:
        result = await asyncio.to_thread(image_inspect.inspect, part, image.disk_format,
                                         s.max_image_virtual_gb * 2**30)
    except image_inspect.ImageRejected as e:
        _reject(session, image.id, part, e.reason)
    except BaseException:
        part.unlink(missing_ok=True)
        _set_status(session, image.id, "saving", status="queued")
        raise
    _activate(session, image.id, part, final, size, checksum, result.format, key)


def staged_path(image_id: str) -> Path:
    """Where a host on the store's file system leaves an image's data for import."""
    return get_settings().image_store / "staging" / str(uuid.UUID(image_id))


def _hash_and_sync(part: Path, checksum: str | None) -> tuple[int, str]:
    """(size, sha256) of the staged file, flushed to disk: the flush runs in a thread
    of its own while the hash reads, since one waits on the disk, the other on a CPU.
    With the host's `checksum` there is nothing to read."""
    fd = os.open(part, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise image_inspect.ImageRejected("the staged data is not a regular file")
        with ThreadPoolExecutor(1) as pool:
            flushed = pool.submit(os.fsync, f.fileno())
            if checksum is None:
                checksum = hashlib.file_digest(f, "sha256").hexdigest()
            flushed.result()
        return os.fstat(f.fileno()).st_size, checksum


async def import_staged(session: Session, auth: AuthContext, image_id: str,
                        request: Request, idempotency_key: str | None = None) -> None:
    """Hosts only: adopt the data a host wrote into <store>/staging/<id> (a snapshot's
    copy, when the host shares the store's file system) instead of PUTting it: the same
    inspection as an upload, a rename instead of a second copy, and one hash pass
    unless the host sent the sha256 it computed while writing (X-Image-Checksum). 404
    ImageNotStaged when there is no such file (the host then uploads with PUT); 204 for
    an image a previous call already made active."""
    if not auth.is_service:
        raise Forbidden("only hosts import staged image data; upload with PUT .../file")
    s = get_settings()
    image = get_image(session, auth, image_id)
    if find_idempotent(session, auth, idempotency_key, "image", "import", image_id):
        return
    checksum = request.headers.get(CHECKSUM_HEADER)
    if checksum is not None and not SHA256_HEX.fullmatch(checksum):
        raise BadRequest(f"{CHECKSUM_HEADER} must be a sha256 in lowercase hex")
    staged = staged_path(image.id)
    if not staged.is_file() or staged.is_symlink():
        if image.status == "active":
            return  # a retry of an import that went through
        raise NotFound(f"no staged data for image {image.id} on the image store",
                       type="ImageNotStaged")
    if staged.stat().st_size > s.max_upload_gb * 2**30:
        raise PayloadTooLarge(f"the image is larger than the upload limit of "
                              f"{s.max_upload_gb} GB")
    if not _set_status(session, image.id, "queued", status="saving"):
        session.refresh(image)
        raise Conflict(f"image {image.id} is {image.status}, not queued: its data can be "
                       "uploaded once", type="ImageNotQueued")
    final, part = s.image_store / image.id, s.image_store / f"{image.id}.part"
    try:
        staged.rename(part)  # from here on the data is the store's, not the host's
        size, digest = await asyncio.to_thread(_hash_and_sync, part, checksum)
    except image_inspect.ImageRejected as e:
        _reject(session, image.id, part, e.reason)
    except BaseException:
        _set_status(session, image.id, "saving", status="queued")
        with contextlib.suppress(OSError):
            part.rename(staged)  # back where the host's retry will look for it
        raise
    await _inspect_and_activate(session, image, part, final, size, digest,
                                (auth, idempotency_key, "import"))


def _activate(session: Session, image_id: str, part: Path, final: Path, size: int,
              checksum: str, detected: str, key: Key = None) -> None:
    try:
        part.rename(final)
    except FileNotFoundError:  # the image was deleted during the upload
        raise Conflict(f"image {image_id} was deleted during the upload") from None
    if not _set_status(session, image_id, "saving", key=key, status="active", size=size,
                       checksum=checksum, location=str(final), fault=None):
        final.unlink(missing_ok=True)
        raise Conflict(f"image {image_id} was deleted during the upload")
    log.info("image %s active: %d bytes, %s, sha256 %s", image_id, size, detected, checksum)


def stored_path(image: Image) -> Path:
    """The image's file, which must be in the store: a location is never a way out."""
    store = get_settings().image_store.resolve()
    path = Path(image.location or "").resolve()
    if image.status != "active" or not image.location:
        raise Conflict(f"image {image.id} is {image.status}, not active",
                       type="ImageNotActive")
    if not path.is_relative_to(store) or not path.is_file():
        raise ApiError(f"the data of image {image.id} is missing from the image store",
                       type="ImageDataMissing")
    return path


def download(session: Session, auth: AuthContext, image_id: str) -> tuple[Path, str | None]:
    """The file of an active image the caller may boot (hosts: any image) and its
    sha256."""
    image = get_image(session, auth, image_id, member_status="accepted")
    return stored_path(image), image.checksum

"""The hosts' side of the image service: image data goes over HTTP to and from the
API with the service token (vmflow.bootstrap.ensure_service), so a host needs nothing
of the control plane but its URL and a token. The one shortcut: a host that shares
the store's file system stages a snapshot there and asks the API to import it.

Errors follow Temporal's rules: what a retry cannot fix (a refused token, an image
that is gone, rejected or not active) is a non-retryable ApplicationError; a
connection problem or a 5xx is an ordinary exception, retried.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import httpx

from activities.errors import permanent
from vmflow.contracts.errors import Errors
from vmflow.contracts.instances import CHECKSUM_HEADER
from vmflow.settings import Settings

CHUNK = 4 << 20
TIMEOUT = httpx.Timeout(30.0, read=600.0)  # the API inspects and fsyncs before answering
SERVICE_AUTH = "ImageServiceAuth"  # the API refused the service token: retrying won't fix it

Progress = Callable[[int], object]


def service_token(settings: Settings) -> str:
    """VMFLOW_SERVICE_TOKEN, else the file bootstrap wrote in VMFLOW_HOME."""
    if settings.service_token:
        return settings.service_token
    try:
        return settings.service_token_file.read_text().strip()
    except FileNotFoundError:
        raise permanent(f"no service token: set VMFLOW_SERVICE_TOKEN or run the bootstrap, which "
                        f"writes {settings.service_token_file}", SERVICE_AUTH) from None


def client(settings: Settings) -> httpx.Client:
    return httpx.Client(base_url=settings.base_url, timeout=TIMEOUT,
                        headers={"Authorization": f"Bearer {service_token(settings)}"})


def api_message(r: httpx.Response) -> str:
    """The API's error message ({"error": {"message"}}), else the body's start."""
    try:
        return str(r.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return r.text[:500]


def _refused(r: httpx.Response, what: str) -> None:
    """Raise for an answer that is not a success."""
    if r.is_success:
        return
    message = f"{what}: {api_message(r)} (HTTP {r.status_code})"
    if r.status_code in (401, 403):
        raise permanent(message, SERVICE_AUTH)
    if r.status_code == 404:
        raise permanent(message, Errors.NOT_FOUND)
    if r.status_code in (400, 409, 413):
        raise permanent(message, Errors.IMAGE_INVALID)
    raise RuntimeError(message)  # 5xx and the like: retried


def download(settings: Settings, location: str, out: BinaryIO,
             progress: Progress | None = None) -> str:
    """Stream an image's data (`location`: /v1/images/<id>/file) into `out`; returns
    the sha256 of what was written, for the caller to compare with the checksum."""
    h = hashlib.sha256()
    with client(settings) as c, c.stream("GET", location) as r:
        if not r.is_success:
            r.read()
        _refused(r, f"fetching {location}")
        for chunk in r.iter_bytes(CHUNK):
            h.update(chunk)
            out.write(chunk)
            if progress:
                progress(out.tell())
    return h.hexdigest()


def _chunks(path: Path, h: hashlib._Hash, progress: Progress | None) -> Iterator[bytes]:
    sent = 0
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
            sent += len(chunk)
            if progress:
                progress(sent)
            yield chunk


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def upload_image_file(settings: Settings, image_id: str, path: str,
                      progress: Progress | None = None) -> None:
    """PUT the file at `path` as the data of queued image `image_id` (streamed). Safe
    to repeat: if an earlier attempt already made the image active with this very
    data, that is success. Raises ApplicationError(type ImageInvalid, non-retryable)
    with the API's reason if the API rejected the data (the image is then in error)."""
    src = Path(path)
    url = f"/v1/images/{image_id}/file"
    h = hashlib.sha256()
    with client(settings) as c:
        r = c.put(url, content=_chunks(src, h, progress),
                  headers={"Content-Type": "application/octet-stream",
                           "Content-Length": str(src.stat().st_size)})
        if r.status_code == 409:
            _already_there(c, image_id, src, r)
            return
        _refused(r, f"uploading {src.name} to image {image_id}")


def import_staged(settings: Settings, image_id: str, checksum: str | None = None) -> bool:
    """Ask the API to adopt the data this host left in <store>/staging/<id> (see
    api/routers/image_files.import_staged), with its sha256 if this host computed it
    while writing the file. False when the API does not see the file: this host does
    not share the store's file system, so the data must go by PUT."""
    headers = {CHECKSUM_HEADER: checksum} if checksum else None
    with client(settings) as c:
        r = c.post(f"/v1/images/{image_id}/import", headers=headers)
        if r.status_code == 404 and _error_type(r) == "ImageNotStaged":
            return False
        _refused(r, f"importing the staged data of image {image_id}")
        return True


def _error_type(r: httpx.Response) -> str:
    try:
        return str(r.json()["error"]["type"])
    except (ValueError, KeyError, TypeError):
        return ""


def _already_there(c: httpx.Client, image_id: str, src: Path, conflict: httpx.Response) -> None:
    """A 409: fine if the image is active with our data (an earlier attempt's upload);
    retried while another upload of it is still in flight; else an error."""
    r = c.get(f"/v1/images/{image_id}")
    _refused(r, f"reading image {image_id}")
    image = r.json()
    if image["status"] == "active" and image["checksum"] == _sha256(src):
        return
    if image["status"] == "saving":
        raise RuntimeError(f"image {image_id} is being uploaded by another request")
    if image["status"] == "error":
        raise permanent(f"image {image_id} was rejected: {image.get('fault')}",
                        Errors.IMAGE_INVALID)
    raise permanent(f"cannot upload to image {image_id}: {api_message(conflict)}",
                    Errors.INVALID_STATE)

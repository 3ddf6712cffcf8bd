"""What the share facade's routes share: the project id in the URL, links, Manila's
timestamps and booleans, and paging/sorting of a list as Manila does it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Request

from api.errors import BadRequest
from api.openstack.common import OsAuthDep
from api.openstack.microversion import Microversions, Version
from api.schemas.common import utc

MICROVERSIONS = Microversions("shared-file-system", "X-OpenStack-Manila-API-Version",
                              Version(2, 0), Version(2, 80))
T = TypeVar("T")
AZ = "nova"  # vmflow has one availability zone; Manila's default name


def project_in_url(request: Request, auth: OsAuthDep) -> None:
    """Manila (api/openstack/wsgi.py): a project id in the URL that is not the token's
    is a malformed URL (400), for admins too."""
    project_id = request.path_params.get("project_id")
    if project_id is not None and project_id != auth.project_id:
        raise BadRequest("Malformed request url")


def router() -> APIRouter:
    return APIRouter(dependencies=[Depends(project_in_url)])


def base_url(request: Request) -> str:
    """http://host/share (the sub-application's root: its mount point)."""
    return f"{request.url.scheme}://{request.url.netloc}" \
        f"{request.scope.get('root_path', '')}".rstrip("/")


def links(request: Request, collection: str, rid: str) -> list[dict[str, str]]:
    root = base_url(request)
    project = request.path_params.get("project_id")
    scoped = f"{root}/v2/{project}" if project else f"{root}/v2"
    return [{"rel": "self", "href": f"{scoped}/{collection}/{rid}"},
            {"rel": "bookmark", "href": f"{root}/{collection}/{rid}"}]


def stamp(dt: datetime | None) -> str | None:
    """Manila's timestamps: UTC without an offset, microseconds."""
    return utc(dt).strftime("%Y-%m-%dT%H:%M:%S.%f") if dt is not None else None


TRUE = frozenset({"1", "t", "true", "on", "y", "yes"})
FALSE = frozenset({"0", "f", "false", "off", "n", "no"})


def flag(value: object, name: str) -> bool:
    """A boolean as Manila reads it (oslo strutils, strict): 400 when it is none."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise BadRequest(f"Invalid boolean value {value!r} for {name}", type="InvalidInput")


def page(request: Request, rows: Sequence[T], keys: dict[str, Callable[[T], Any]],
         default_key: str = "created_at") -> tuple[list[T], int]:
    """sort_key/sort_dir, then offset/limit: the page and the count before paging."""
    q = request.query_params
    key = q.get("sort_key", default_key)
    if key not in keys:
        raise BadRequest(f"Wrong sort_key filter provided: '{key}'", type="InvalidInput")
    direction = q.get("sort_dir", "desc").lower()
    if direction not in ("asc", "desc"):
        raise BadRequest(f"Wrong sort_dir filter provided: '{direction}'", type="InvalidInput")
    get = keys[key]
    ordered = sorted(rows, key=lambda r: (get(r) is None, get(r) if get(r) is not None else 0),
                     reverse=direction == "desc")
    offset, limit = _int(q.get("offset"), "offset"), _int(q.get("limit"), "limit")
    shown = ordered[offset or 0:]
    if limit is not None:
        shown = shown[:limit]
    return shown, len(ordered)


def _int(text: str | None, name: str) -> int | None:
    if text is None:
        return None
    try:
        n = int(text)
    except ValueError:
        raise BadRequest(f"{name} param must be an integer", type="InvalidInput") from None
    if n < 0:
        raise BadRequest(f"{name} param must be positive", type="InvalidInput")
    return n

"""GET /v2/images: Glance's filters, sorting and marker paging over the images the
caller may see (api/services/images.py visible_images, the same rule as /v1).

Defaults as Glance: shares only once accepted (member_status), community images only
the caller's own unless asked for (visibility=community or all), hidden images
(os_hidden) only with os_hidden=true, newest first, 25 a page."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from sqlmodel import Session

from api.auth import AuthContext
from api.errors import BadRequest
from api.openstack.image.image_views import STATUS_OF_GLANCE, TRUE, image_view
from api.schemas.common import utc
from api.services.images import MemberFilter, visible_images

SORT_KEYS = ("name", "status", "container_format", "disk_format", "size", "id",
             "created_at", "updated_at")
VISIBILITIES = ("community", "public", "private", "shared", "all")
MEMBER_STATUSES = ("pending", "accepted", "rejected", "all")
DEFAULT_LIMIT, MAX_LIMIT = 25, 1000
FALSE = ("false", "no", "0", "off", "n", "f")
# query parameters that are not equality filters on a field
CONTROL = ("limit", "marker", "member_status", "tag", "sort", "sort_key", "sort_dir",
           "size_min", "size_max", "visibility", "os_hidden")


def _sorting(params: list[tuple[str, str]]) -> list[tuple[str, bool]]:
    """[(key, descending)] from sort=k:dir,... or sort_key=k&sort_dir=dir pairs."""
    keys = [v.strip() for k, v in params if k == "sort_key"]
    dirs = [v.strip() for k, v in params if k == "sort_dir"]
    new = [v for k, v in params if k == "sort"]
    if new and (keys or dirs):
        raise BadRequest("Old and new sorting syntax cannot be combined")
    pairs: list[tuple[str, str]] = []
    for part in ",".join(new).split(",") if new else []:
        key, _, direction = part.partition(":")
        pairs.append((key.strip(), direction.strip() or "desc"))
    if not new:
        if len(dirs) > 1 and len(dirs) != len(keys):
            raise BadRequest("Number of sort dirs does not match the number of sort keys")
        keys = keys or ["created_at"]
        pairs = [(k, dirs[i] if len(dirs) > 1 else (dirs or ["desc"])[0])
                 for i, k in enumerate(keys)]
    for key, direction in pairs:
        if key not in SORT_KEYS:
            raise BadRequest(f"Invalid sort key: {key}. It must be one of the following: "
                             f"{', '.join(SORT_KEYS)}.")
        if direction not in ("asc", "desc"):
            raise BadRequest(f"Invalid sort direction: {direction}")
    return [(k, d == "desc") for k, d in pairs]


def _sort_key(key: str, times: dict[str, tuple[datetime, datetime]]
              ) -> Callable[[dict[str, Any]], tuple[bool, Any]]:
    """None before any value (ascending), as Glance's database sorts NULL; times by
    the stored ones (the view shows them to the second only)."""
    def of(view: dict[str, Any]) -> tuple[bool, Any]:
        if key in ("created_at", "updated_at"):
            created, updated = times[view["id"]]
            return (True, utc(created if key == "created_at" else updated))
        value = view[key]
        return (value is not None, 0 if value is None else value)
    return of


def _int(params: dict[str, str], name: str) -> int | None:
    if name not in params:
        return None
    try:
        value = int(params[name])
    except ValueError:
        raise BadRequest(f"{name} param must be an integer") from None
    if value < 0:
        raise BadRequest(f"{name} param must be positive")
    return value


def _matches(view: dict[str, Any], key: str, wanted: str) -> bool:
    """Glance's equality filter (and `in:a,b`) on a field or an extra property."""
    if key not in view:
        return False
    value = view[key]
    if key == "status":
        value = STATUS_OF_GLANCE.get(str(value), value)
    text = "" if value is None else (str(value).lower() if isinstance(value, bool)
                                     else str(value))
    if wanted.startswith("in:"):
        choices = [c.strip().strip('"') for c in wanted[3:].split(",")]
        if key == "status":
            choices = [STATUS_OF_GLANCE.get(c, c) for c in choices]
        return text in choices
    if key == "status":
        wanted = STATUS_OF_GLANCE.get(wanted, wanted)
    return text == (wanted.lower() if isinstance(value, bool) else wanted)


def list_images(session: Session, auth: AuthContext,
                query: list[tuple[str, str]]) -> dict[str, Any]:
    params = dict(query)
    member_status = params.get("member_status", "accepted")
    if member_status not in MEMBER_STATUSES:
        raise BadRequest(f"Invalid status: {member_status}")
    visibility = params.get("visibility")
    if visibility is not None and visibility not in VISIBILITIES:
        raise BadRequest(f"Invalid visibility value: {visibility}")
    if "changes-since" in params:
        raise BadRequest('The "changes-since" filter is no longer available on v2.')
    hidden = params.get("os_hidden", "false").lower()
    if hidden not in TRUE + FALSE:
        raise BadRequest(f"Invalid value for os_hidden: {params['os_hidden']}")
    limit = _int(params, "limit")
    limit = DEFAULT_LIMIT if limit is None else min(limit, MAX_LIMIT)
    size_min, size_max = _int(params, "size_min"), _int(params, "size_max")
    sorting = _sorting(query)
    tags = [v.strip() for k, v in query if k == "tag"]
    ms: MemberFilter = member_status  # type: ignore[assignment]
    rows = list(session.exec(visible_images(auth, ms)))
    times = {i.id: (i.created_at, i.updated_at) for i in rows}
    views = [image_view(i) for i in rows]

    def keep(v: dict[str, Any]) -> bool:
        if visibility in (None, "all"):
            if visibility is None and v["visibility"] == "community" \
                    and v["owner"] != auth.project_id:
                return False
        elif v["visibility"] != visibility:
            return False
        if v["os_hidden"] != (hidden in TRUE):
            return False
        if any(t not in v["tags"] for t in tags):
            return False
        if size_min is not None and (v["size"] is None or v["size"] < size_min):
            return False
        if size_max is not None and (v["size"] is None or v["size"] > size_max):
            return False
        return all(_matches(v, k, w) for k, w in params.items() if k not in CONTROL)

    views = [v for v in views if keep(v)]
    # stable sorts, the least significant key first; None before any value (ascending)
    for key, desc in reversed([*sorting, ("created_at", True), ("id", True)]):
        views.sort(key=_sort_key(key, times), reverse=desc)
    marker = params.get("marker")
    start = 0
    if marker is not None:
        ids = [v["id"] for v in views]
        if marker not in ids:
            raise BadRequest(f"marker {marker} could not be found")
        start = ids.index(marker) + 1
    page = views[start:start + limit]
    rest = [(k, v) for k, v in query if k != "marker"]
    body: dict[str, Any] = {"images": page, "schema": "/v2/schemas/images",
                            "first": "/v2/images" + (f"?{urlencode(rest)}" if rest else "")}
    if page and start + limit < len(views):
        body["next"] = "/v2/images?" + urlencode([*rest, ("marker", page[-1]["id"])])
    return body

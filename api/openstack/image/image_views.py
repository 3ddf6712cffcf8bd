"""Glance v2's views of vmflow's images and image members.

Glance keeps min_disk, min_ram, protected, os_hidden and tags as attributes of their
own; vmflow keeps them among the image's properties (as it already keeps `protected`),
so the view takes them out of the properties and shows the rest as Glance's top-level
extra properties (strings). vmflow's image `checksum` is a sha256: Glance's `checksum`
is an md5, which vmflow does not compute, so it is null and the sha256 is
os_hash_algo/os_hash_value (what the clients verify a download with first).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from api.schemas.common import utc
from vmflow.models import Image, ImageMember

# Glance attributes vmflow keeps among an image's properties
ATTRIBUTES_IN_PROPERTIES = ("min_disk", "min_ram", "protected", "os_hidden", "tags")
# vmflow's image status -> Glance's
STATUS = {"queued": "queued", "saving": "saving", "active": "active", "error": "killed",
          "deleted": "deleted", "deactivated": "deactivated"}
STATUS_OF_GLANCE = {v: k for k, v in STATUS.items()}
TRUE = ("true", "yes", "1", "on", "y", "t")


def isotime(dt: datetime) -> str:
    """Glance's timestamps: UTC to the second, with a Z."""
    return utc(dt).strftime("%Y-%m-%dT%H:%M:%SZ")


def as_bool(value: Any) -> bool:
    return value is True or str(value).strip().lower() in TRUE


def as_int(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    try:
        return max(int(value), 0)
    except (TypeError, ValueError):
        return 0


def tags_of(props: dict[str, Any]) -> list[str]:
    tags = props.get("tags")
    return [str(t) for t in tags] if isinstance(tags, list) else []


def as_text(value: Any) -> str:
    """An extra property as Glance shows it: always a string."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def extra_properties(image: Image) -> dict[str, str]:
    return {k: as_text(v) for k, v in (image.properties or {}).items()
            if k not in ATTRIBUTES_IN_PROPERTIES}


def image_view(image: Image) -> dict[str, Any]:
    props = image.properties or {}
    view: dict[str, Any] = extra_properties(image)
    view.update(
        id=image.id, name=image.name or None, status=STATUS.get(image.status, image.status),
        disk_format=image.disk_format or None,
        container_format=image.container_format or None,
        visibility=image.visibility, size=image.size, virtual_size=None,
        checksum=None, os_hash_algo="sha256" if image.checksum else None,
        os_hash_value=image.checksum, owner=image.owner,
        min_disk=as_int(props.get("min_disk")), min_ram=as_int(props.get("min_ram")),
        protected=as_bool(props.get("protected")), os_hidden=as_bool(props.get("os_hidden")),
        tags=tags_of(props), created_at=isotime(image.created_at),
        updated_at=isotime(image.updated_at), self=f"/v2/images/{image.id}",
        file=f"/v2/images/{image.id}/file", schema="/v2/schemas/image")
    return view


def member_view(member: ImageMember) -> dict[str, Any]:
    return {"image_id": member.image_id, "member_id": member.member, "status": member.status,
            "created_at": isotime(member.created_at), "updated_at": isotime(member.updated_at),
            "schema": "/v2/schemas/member"}

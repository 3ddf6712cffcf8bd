"""Glance's image PATCH (application/openstack-images-v2.1-json-patch, and the older
v2.0 form): the changes are parsed and checked before anything is read (400 for a
malformed one, 403 for read-only or reserved attributes), then applied to the image
under its row lock (api/services/images.py edit): 409 for replacing or removing a
property the image does not have, 403 for removing a base attribute."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import jsonschema

from api.auth import AuthContext
from api.errors import ApiError, BadRequest, Conflict, Forbidden
from api.openstack.image.image_views import (
    ATTRIBUTES_IN_PROPERTIES,
    as_bool,
    as_int,
    extra_properties,
    tags_of,
)
from api.openstack.image.schemas import image_schema
from api.schemas.common import _display_name, printable, text_value
from vmflow.models import Image

CONTENT_TYPES = {"application/openstack-images-v2.0-json-patch": 4,
                 "application/openstack-images-v2.1-json-patch": 10}
OPERATIONS = ("add", "remove", "replace")
# as glance/api/v2/images.py RequestDeserializer
READ_ONLY = ("created_at", "updated_at", "status", "checksum", "size", "virtual_size",
             "direct_url", "self", "file", "schema", "id", "os_hash_algo", "os_hash_value")
DISALLOWED = ("direct_url", "self", "file", "schema", "stores")
RESERVED = ("location", "deleted", "deleted_at")
RESERVED_NAMESPACE = "os_glance"
BASE = ("checksum", "created_at", "container_format", "disk_format", "id", "min_disk",
        "min_ram", "name", "size", "virtual_size", "status", "tags", "owner", "updated_at",
        "visibility", "protected", "os_hidden")
KERNEL_FORMATS = ("aki", "ari", "ami")
MAX_TAGS = 128


class PayloadTooLargeTags(ApiError):
    status = 413


@dataclass(frozen=True)
class Change:
    op: str
    key: str
    value: Any = None


def check_key(key: str) -> None:
    """403 for what no caller may write (Glance's read-only and reserved attributes)."""
    if key in READ_ONLY or key in DISALLOWED:
        raise Forbidden(f"Attribute '{key}' is read-only.")
    if key in RESERVED or key.startswith(RESERVED_NAMESPACE):
        raise Forbidden(f"Attribute '{key}' is reserved.")


def check_values(values: dict[str, Any]) -> None:
    """The values against Glance's image schema (400), what Glance's domain adds, and
    vmflow's rules for user text (no control characters: api/schemas/common.py)."""
    try:
        jsonschema.validate(values, image_schema())
    except jsonschema.ValidationError as e:
        raise BadRequest(f"Provided object does not match schema 'image': {e.message}") \
            from None
    try:
        for key, value in values.items():
            if len(key) > 255:
                raise ValueError("Custom property should not be greater than 255 characters.")
            printable(key)
            if key == "name" and value:
                _display_name(value)
            elif key not in BASE and isinstance(value, str):
                text_value(value)
    except ValueError as e:
        raise BadRequest(f"{key}: {e}") from None
    for key in ("min_disk", "min_ram"):
        if key in values and values[key] < 0:
            raise BadRequest(f"{key} must be a non-negative integer")
    if len(values.get("tags") or []) > MAX_TAGS:
        raise PayloadTooLargeTags(f"an image has at most {MAX_TAGS} tags")


def _pointer(path: Any) -> str:
    """The one attribute a JSON pointer names ('/name'; ~1 and ~0 decoded)."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise BadRequest(f"Pointer `{path}` does not start with \"/\".")
    if re.search("~[^01]", path) or path.endswith("~"):
        raise BadRequest(f"Pointer `{path}` contains \"~\" not part of a recognized escape "
                         "sequence.")
    parts = path[1:].split("/")
    if len(parts) != 1 or not parts[0].strip():
        raise BadRequest(f"Invalid JSON pointer for this resource: '{path}'")
    return parts[0].replace("~1", "/").replace("~0", "~").strip()


def parse(content_type: str, body: Any) -> list[Change]:
    """The changes of a PATCH body, checked: 400 malformed, 403 read-only/reserved."""
    version = CONTENT_TYPES[content_type]
    if not isinstance(body, list):
        raise BadRequest("Request body must be a JSON array of operation objects.")
    changes = []
    for raw in body:
        if not isinstance(raw, dict):
            raise BadRequest("Operations must be JSON objects.")
        if version == 10:
            op, path = raw.get("op"), raw.get("path")
            if op not in OPERATIONS:
                raise BadRequest(f"Invalid operation: `{op}`. It must be one of the "
                                 f"following: {', '.join(OPERATIONS)}.")
        else:
            ops = [o for o in OPERATIONS if o in raw]
            if len(ops) != 1:
                raise BadRequest('Operation objects must contain exactly one member named '
                                 '"add", "remove", or "replace".')
            op, path = ops[0], raw[ops[0]]
        key = _pointer(path)
        check_key(key)
        if op == "remove":
            changes.append(Change(op, key))
            continue
        if "value" not in raw:
            raise BadRequest(f'Operation "{op}" requires a member named "value".')
        check_values({key: raw["value"]})
        changes.append(Change(op, key, raw["value"]))
    return changes


def writable(image: Image) -> dict[str, Any]:
    """What a PATCH may change, as Glance shows it."""
    props = image.properties or {}
    return {**extra_properties(image), "name": image.name or None,
            "visibility": image.visibility, "owner": image.owner,
            "disk_format": image.disk_format or None,
            "container_format": image.container_format or None,
            "min_disk": as_int(props.get("min_disk")), "min_ram": as_int(props.get("min_ram")),
            "protected": as_bool(props.get("protected")),
            "os_hidden": as_bool(props.get("os_hidden")), "tags": tags_of(props)}


def apply(image: Image, changes: list[Change], auth: AuthContext) -> None:
    """Apply the changes to the (locked) row; raises, before writing, to refuse."""
    doc = writable(image)
    for change in changes:
        present = change.key in doc
        if change.op == "remove":
            if change.key in BASE:
                raise Forbidden(f"Property {change.key} may not be removed.")
            if not present:
                raise Conflict(f"Property {change.key} does not exist.")
            del doc[change.key]
        elif change.op == "replace" and not present:
            raise Conflict(f"Property {change.key} does not exist.")
        else:
            if change.key == "owner" and not auth.is_admin:
                raise Forbidden("Owner can't be updated by non admin.")
            doc[change.key] = change.value
    write(image, doc)


def check_formats(disk: str | None, container: str | None) -> None:
    if disk and container and (disk in KERNEL_FORMATS or container in KERNEL_FORMATS) \
            and disk != container:
        raise BadRequest("Invalid mix of disk and container formats. When setting a disk or "
                         "container format to one of 'aki', 'ari', or 'ami', the container "
                         "and disk formats must match.")


def write(image: Image, doc: dict[str, Any]) -> None:
    for key in ("disk_format", "container_format"):
        if (doc[key] or "") != (getattr(image, key) or "") and image.status != "queued":
            raise Forbidden(f"Attribute {key} can be only replaced for a queued image.")
    check_formats(doc["disk_format"], doc["container_format"])
    tags = list(dict.fromkeys(doc["tags"]))  # Glance keeps a set, in the order given
    props: dict[str, Any] = {k: v for k, v in doc.items() if k not in BASE}
    old = image.properties or {}
    for key in ATTRIBUTES_IN_PROPERTIES:  # kept only when set, so /v1 shows no clutter
        value = tags if key == "tags" else doc[key]
        if value or key in old:
            props[key] = value
    image.name, image.visibility, image.owner = doc["name"] or "", doc["visibility"], doc["owner"]
    image.disk_format = doc["disk_format"] or ""
    image.container_format = doc["container_format"] or ""
    image.properties = props

"""Glance's JSON schemas (GET /v2/schemas/image|images|member|members): static copies
of what Glance serves (glance/api/v2/images.py get_schema with etc/schema-image.json,
image_members.py), with vmflow's disk and container formats as the configured ones.
python-glanceclient validates images against /v2/schemas/image (warlock); the facade
validates create and PATCH bodies against the same schema."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter

from api.openstack.common import OsAuthDep

DATA = Path(__file__).parent / "data"

router = APIRouter(prefix="/v2/schemas")


@cache
def _load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text())
    return loaded


def image_schema() -> dict[str, Any]:
    return copy.deepcopy(_load("image"))


def member_schema() -> dict[str, Any]:
    return copy.deepcopy(_load("member"))


def collection(name: str, item: dict[str, Any]) -> dict[str, Any]:
    """Glance's CollectionSchema around an item schema."""
    return {"name": name,
            "properties": {name: {"type": "array", "items": item},
                           "first": {"type": "string"}, "next": {"type": "string"},
                           "schema": {"type": "string"}},
            "links": [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"},
                      {"rel": "describedby", "href": "{schema}"}]}


@router.get("/image")
def get_image_schema(_: OsAuthDep) -> dict[str, Any]:
    return image_schema()


@router.get("/images")
def get_images_schema(_: OsAuthDep) -> dict[str, Any]:
    return collection("images", image_schema())


@router.get("/member")
def get_member_schema(_: OsAuthDep) -> dict[str, Any]:
    return member_schema()


@router.get("/members")
def get_members_schema(_: OsAuthDep) -> dict[str, Any]:
    return collection("members", member_schema())

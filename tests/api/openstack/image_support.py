"""Helpers of the Glance facade's tests: Keystone-style headers, an image made through
/image/v2, its upload, and the check of every image view against the served schema
(as python-glanceclient does with warlock)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema

from tests.api.conftest import Caller

V2 = "/image/v2"
PATCH = "application/openstack-images-v2.1-json-patch"


def h(who: Caller) -> dict[str, str]:
    return {"X-Auth-Token": who.token}


async def served_schema(api: httpx.AsyncClient, who: Caller, name: str) -> dict[str, Any]:
    r = await api.get(f"{V2}/schemas/{name}", headers=h(who))
    assert r.status_code == 200, r.text
    schema: dict[str, Any] = r.json()
    return schema


async def valid_image(api: httpx.AsyncClient, who: Caller,
                      image: dict[str, Any]) -> dict[str, Any]:
    jsonschema.validate(image, await served_schema(api, who, "image"))
    return image


async def create(api: httpx.AsyncClient, who: Caller, **body: Any) -> dict[str, Any]:
    body = {"disk_format": "raw", "container_format": "bare", **body}
    r = await api.post(f"{V2}/images", headers=h(who), json=body)
    assert r.status_code == 201, r.text
    return await valid_image(api, who, r.json())


async def patch(api: httpx.AsyncClient, who: Caller, image_id: str,
                ops: list[dict[str, Any]]) -> httpx.Response:
    return await api.patch(f"{V2}/images/{image_id}", content=json.dumps(ops),
                           headers={**h(who), "Content-Type": PATCH})


async def upload(api: httpx.AsyncClient, who: Caller, image_id: str,
                 data: bytes) -> httpx.Response:
    return await api.put(f"{V2}/images/{image_id}/file", content=data,
                         headers={**h(who), "Content-Type": "application/octet-stream"})

# a small raw disk: valid data for the upload's inspection
GOOD_RAW = b"\x55" * 65536

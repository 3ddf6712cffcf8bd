"""Version discovery (CLIENTS.md 2.1): keystoneauth reads GET {auth_url} before it
authenticates, and openstacksdk reads the catalog's unversioned /identity."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.openstack.identity.deps import base_url

router = APIRouter()


def v3(request: Request) -> dict[str, Any]:
    return {"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
            "links": [{"rel": "self", "href": f"{base_url(request)}/identity/v3/"}],
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.identity-v3+json"}]}


@router.get("/")
def versions(request: Request) -> JSONResponse:
    """300 Multiple Choices, as Keystone answers its root."""
    return JSONResponse({"versions": {"values": [v3(request)]}}, status_code=300)


@router.get("/v3")
@router.get("/v3/", include_in_schema=False)
def version(request: Request) -> dict[str, Any]:
    return {"version": v3(request)}

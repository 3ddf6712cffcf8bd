"""Glance's version discovery (GET /image, /image/versions: 300 with the v2.x versions,
CURRENT the newest) and /v2/info (no interoperable import methods, no multiple stores:
Tempest's import tests then skip themselves)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.errors import NotFound
from api.openstack.common import OsAuthDep

router = APIRouter()

# the v2 minor versions Glance lists (2.0 .. 2.16); the newest is CURRENT
MINORS = range(16, -1, -1)


def versions(request: Request) -> list[dict[str, Any]]:
    base = str(request.base_url).rstrip("/")
    mount = request.scope.get("root_path", "").rstrip("/")  # /image, where it is mounted
    if mount and not base.endswith(mount):
        base += mount
    href = f"{base}/v2/"
    return [{"id": f"v2.{minor}", "status": "CURRENT" if minor == MINORS[0] else "SUPPORTED",
             "links": [{"rel": "self", "href": href}]} for minor in MINORS]


@router.get("/")
@router.get("/versions")
def list_versions(request: Request) -> JSONResponse:
    return JSONResponse({"versions": versions(request)}, status_code=300)


@router.get("/v2")
@router.get("/v2/")
def show_v2(request: Request) -> dict[str, Any]:
    return {"versions": versions(request)}


@router.get("/v2/info/import")
def import_info(_: OsAuthDep) -> dict[str, Any]:
    return {"import-methods": {"description": "Import methods available.", "type": "array",
                               "value": []}}


@router.get("/v2/info/stores")
def stores_info(_: OsAuthDep) -> dict[str, Any]:
    raise NotFound("Multi backend is not supported at this site.")

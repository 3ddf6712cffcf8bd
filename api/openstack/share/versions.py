"""Manila's version documents: GET /share/ (300, both versions) and GET /share/v2/."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.openstack.share.base import MICROVERSIONS, base_url

api = APIRouter()
UPDATED = "2015-08-27T11:33:21Z"
MEDIA = [{"base": "application/json",
          "type": "application/vnd.openstack.share+json;version=1"}]


def documents(request: Request) -> list[dict[str, Any]]:
    root = base_url(request)
    doc = "https://docs.openstack.org/"
    return [
        {"id": "v1.0", "status": "DEPRECATED", "version": "", "min_version": "",
         "updated": UPDATED, "media-types": MEDIA,
         "links": [{"rel": "describedby", "type": "text/html", "href": doc},
                   {"rel": "self", "href": f"{root}/v1/"}]},
        {"id": "v2.0", "status": "CURRENT", "version": str(MICROVERSIONS.maximum),
         "min_version": str(MICROVERSIONS.minimum), "updated": UPDATED, "media-types": MEDIA,
         "links": [{"rel": "describedby", "type": "text/html", "href": doc},
                   {"rel": "self", "href": f"{root}/v2/"}]},
    ]


@api.get("/")
def all_versions(request: Request) -> JSONResponse:
    return JSONResponse({"versions": documents(request)}, status_code=300)


@api.get("/v2/")
def version_two(request: Request) -> dict[str, Any]:
    return {"versions": [documents(request)[1]]}


@api.get("/v2")
def version_two_bare(request: Request) -> dict[str, Any]:
    return {"versions": [documents(request)[1]]}

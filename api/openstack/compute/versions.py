"""Nova's version documents: GET /compute/ lists v2.0 (first, as Tempest's
test_list_api_versions asserts) and v2.1 (CURRENT, microversions 2.1 to the maximum);
GET /compute/v2/ and /compute/v2.1/ show one. Static but for the links, which name
this endpoint. Open: no token (as in Nova, clients discover before they log in)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from api.openstack.compute.server_views import endpoint

router = APIRouter(tags=["compute versions"])

MEDIA_TYPES = [{"base": "application/json",
                "type": "application/vnd.openstack.compute+json;version=2.1"}]


def _versions(request: Request) -> dict[str, dict[str, Any]]:
    from api.openstack.compute import MICROVERSIONS  # the package imports this module

    base = endpoint(request)  # .../compute/
    return {
        "v2.0": {"id": "v2.0", "status": "SUPPORTED", "version": "", "min_version": "",
                 "updated": "2011-01-21T11:33:21Z",
                 "links": [{"rel": "self", "href": f"{base}v2/"}]},
        "v2.1": {"id": "v2.1", "status": "CURRENT", "version": str(MICROVERSIONS.maximum),
                 "min_version": str(MICROVERSIONS.minimum), "updated": "2013-07-23T11:33:21Z",
                 "links": [{"rel": "self", "href": f"{base}v2.1/"}]},
    }


@router.get("/")
def list_versions(request: Request) -> dict[str, Any]:
    return {"versions": list(_versions(request).values())}


def _one(request: Request, vid: str) -> dict[str, Any]:
    version = dict(_versions(request)[vid])
    version["links"] = [*version["links"],
                        {"rel": "describedby", "type": "text/html",
                         "href": "https://docs.openstack.org/"}]
    version["media-types"] = MEDIA_TYPES
    return {"version": version}


@router.get("/v2/")
@router.get("/v2")
def show_v2(request: Request) -> dict[str, Any]:
    return _one(request, "v2.0")


@router.get("/v2.1/")
@router.get("/v2.1")
def show_v21(request: Request) -> dict[str, Any]:
    return _one(request, "v2.1")

"""The compute facade's two isolation matrices (the server routes and the rest)
together classify every route of the compute sub-application: a route in a new module
that neither matrix names fails here."""

from __future__ import annotations

from typing import Any

from fastapi.routing import APIRoute

from api.openstack import compute
from tests.api.openstack import test_compute_misc_isolation as misc
from tests.api.openstack import test_compute_servers_isolation as servers


def every_route() -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()

    def walk(routes: list[Any], prefix: str) -> None:
        for r in routes:
            if isinstance(r, APIRoute):
                found.update((m, prefix + r.path) for m in r.methods or ())
            elif hasattr(r, "original_router"):
                walk(r.original_router.routes, prefix + r.include_context.prefix)
    walk(compute.create().routes, "")
    return found


def test_every_compute_route_is_in_a_matrix() -> None:
    routes = every_route()
    assert len(routes) > 40, "the walk found too few compute routes"
    assert routes - set(servers.MATRIX) - set(misc.MATRIX) == set()

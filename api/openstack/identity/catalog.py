"""The service catalog of a project-scoped token: every facade on this port, one
region, the same URL for the public, internal and admin interfaces (one port)."""

from __future__ import annotations

import uuid
from typing import Any

REGION = "RegionOne"
INTERFACES = ("public", "internal", "admin")
_NS = uuid.UUID("6f1d7a0e-3b1c-4a55-9a7e-2c4f3e7b9d10")

# (type, name, path after the base URL; {project_id} is the token's project)
SERVICES = (
    ("identity", "keystone", "/identity"),
    ("compute", "nova", "/compute/v2.1"),
    ("image", "glance", "/image"),
    ("shared-file-system", "manilav2", "/share/v2/{project_id}"),
    ("sharev2", "manilav2", "/share/v2/{project_id}"),
    ("share", "manila", "/share/v1/{project_id}"),
    ("network", "neutron", "/networking"),
)


def stable_id(*parts: str) -> str:
    """Ids Keystone would keep in its tables: the same on every answer."""
    return uuid.uuid5(_NS, "/".join(parts)).hex


def catalog(base: str, project_id: str) -> list[dict[str, Any]]:
    entries = []
    for kind, name, path in SERVICES:
        url = base + path.format(project_id=project_id)
        entries.append({
            "id": stable_id("service", kind), "type": kind, "name": name,
            "endpoints": [{"id": stable_id("endpoint", kind, interface),
                           "interface": interface, "region": REGION, "region_id": REGION,
                           "url": url} for interface in INTERFACES]})
    return entries

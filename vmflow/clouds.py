"""clouds.yaml for the OpenStack tools: a cloud named `vmflow` that logs in to the
Keystone facade (/identity/v3) with the admin token, so `OS_CLOUD=vmflow openstack
server list` works after `make up`. The admin user has no password; the token
plugin trades the admin token for a Keystone token scoped to the admin project.

Written without a YAML library (none is a runtime dependency): JSON strings are
YAML scalars. A user's own clouds.yaml, not written by vmflow, is left alone."""

from __future__ import annotations

import json
import os
from pathlib import Path

CLOUD = "vmflow"
MARK = "# written by vmflow (make up); rewritten on every start"
# where openstacksdk looks for a user's clouds.yaml (after ./clouds.yaml)
USER_FILE = Path.home() / ".config" / "openstack" / "clouds.yaml"


def render(base_url: str, admin_token: str) -> str:
    q = json.dumps
    return "\n".join([
        MARK, "clouds:", f"  {CLOUD}:",
        "    auth_type: v3token",
        "    auth:",
        f"      auth_url: {q(base_url.rstrip('/') + '/identity/v3')}",
        f"      token: {q(admin_token)}",
        "      project_name: admin",
        "      project_domain_name: Default",
        "    region_name: RegionOne",
        "    interface: public",
        "    identity_api_version: 3", ""])


def write(path: Path, text: str) -> bool:
    """Write `text` to `path` (0600: it holds the admin token, replaced atomically)
    unless `path` is somebody else's file; True if written."""
    if path.exists() and not path.read_text().startswith(MARK):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    tmp.replace(path)
    return True

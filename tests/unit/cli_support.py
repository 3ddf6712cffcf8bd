"""What the CLI unit tests share: ids and API-shaped answers (the `api` fixture that
installs a MockTransport as the API is in conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

SID = "d49ff7f9-ada8-416f-b57c-eb40ce192008"
OP = "2dcb7499-7771-4bb0-88ce-d81b00c3dcfb"
SERVER = {"id": SID, "name": "vm1", "status": "ACTIVE", "vm_state": "active",
          "task_state": None, "host": "hv1", "addresses": {"private": [{"addr": "10.0.0.5"}]},
          "locked": False, "fault": None, "metadata": {"a": "b"},
          "created_at": "2026-11-22T02:17:48.123456Z"}


def operation(status: str, step: str | None = None, progress: int | None = None,
              last_error: str | None = None) -> dict[str, Any]:
    return {"id": OP, "action": "create", "status": status, "step": step,
            "progress": progress, "attempt": 1, "last_error": last_error,
            "workflow_id": f"instance-{SID}"}


Handler = Callable[[httpx.Request], httpx.Response]


def error(code: int, message: str) -> httpx.Response:
    return httpx.Response(code, json={"error": {"code": code, "type": "X", "message": message}})


def accepted() -> httpx.Response:
    return httpx.Response(202, json={"operation": {"id": OP, "workflow_id": f"instance-{SID}",
                                                   "status": "running"}})

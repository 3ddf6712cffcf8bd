"""Unit-tier fixtures: `api` puts a handler in place of the vmflow API for the CLI."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.unit.cli_support import Handler
from vmflow.cli import common


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Handler], list[httpx.Request]]]:
    """Install a handler as the API; returns the list of requests it saw."""
    monkeypatch.setattr(common, "POLL_S", 0.0)
    monkeypatch.setattr(common, "state", common.State(url="http://api.test", token="tok"))

    def install(handler: Handler) -> list[httpx.Request]:
        seen: list[httpx.Request] = []

        def record(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return handler(request)

        common.state.transport = httpx.MockTransport(record)
        return seen

    yield install

"""The fault tier: kill -9 of workers and services in the middle of operations, on its own
stack, which keeps its state in PostgreSQL (the integration tier's is SQLite)."""

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import api, it_settings  # noqa: F401  (shared fixtures)
from tests.postgres import Postgres, postgres_server

# a snapshot stays frozen HOLD_FROZEN_S before its copy begins, so a test can kill the
# hypervisor worker while the guest is frozen; the thaw guard fires THAW_DEADLINE_S
# after the freeze, before Temporal notices the dead worker (heartbeat timeout 10 s)
HOLD_FROZEN_S = 4.0
THAW_DEADLINE_S = 8.0
AGENT_TIMEOUT_S = 90


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """The stack's database server, which tests may kill and start again."""
    with postgres_server("vmflow-faultpg-") as pg:
        yield pg


@pytest.fixture(scope="session")
def stack_overrides(postgres: Postgres) -> dict[str, Any]:
    return {"snapshot_hold_frozen_s": HOLD_FROZEN_S, "snapshot_thaw_deadline": THAW_DEADLINE_S,
            "database_url": postgres.url,
            "fault_points": True,  # workers.fault_point: the matrix arms it per cell
            # TCG boots on a shared 2-core machine: a clean rescue or rebuild took > 30 s
            "agent_timeout": AGENT_TIMEOUT_S}

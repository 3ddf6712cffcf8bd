"""The fault tier: kill -9 of workers in the middle of operations, on its own stack."""

from typing import Any

import pytest

from tests.integration.conftest import api, it_settings  # noqa: F401  (shared fixtures)

# a snapshot stays frozen HOLD_FROZEN_S before its copy begins, so a test can kill the
# hypervisor worker while the guest is frozen; the thaw guard fires THAW_DEADLINE_S
# after the freeze, before Temporal notices the dead worker (heartbeat timeout 10 s)
HOLD_FROZEN_S = 4.0
THAW_DEADLINE_S = 8.0


@pytest.fixture(scope="session")
def stack_overrides() -> dict[str, Any]:
    return {"snapshot_hold_frozen_s": HOLD_FROZEN_S, "snapshot_thaw_deadline": THAW_DEADLINE_S}

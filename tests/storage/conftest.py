"""Storage tests: a real btrfs pool (sparse file, loop-mounted) in a temporary
VMFLOW_HOME per test. Whatever a test leaves mounted is unmounted afterwards, even
when it failed, and the pool's loop devices are detached."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from activities.storage.share_pool import SharePool
from tests.conftest import qemu_home
from tests.home_cleanup import teardown_home
from vmflow.settings import Settings

POOL_GB = 4  # sparse: only what the tests write takes disk space


@pytest.fixture
def storage_settings() -> Iterator[Settings]:
    home = qemu_home("storage")
    try:
        yield Settings(home=home, host="unused", storage_host="teststore",
                       share_pool_gb=POOL_GB)
    finally:
        teardown_home(home)


@pytest.fixture
def pool(storage_settings: Settings) -> SharePool:
    p = SharePool(storage_settings)
    p.ensure()
    return p

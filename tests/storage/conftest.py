"""Storage tests: a real btrfs pool (sparse file, loop-mounted) in a temporary
VMFLOW_HOME per test. Whatever a test leaves mounted is unmounted afterwards, even
when it failed, and the pool's loop devices are detached."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from activities.btrfs import unescape
from activities.share_pool import SharePool
from tests.conftest import qemu_home
from vmflow.settings import Settings

POOL_GB = 4  # sparse: only what the tests write takes disk space


def mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve()) + "/"
    with open("/proc/self/mountinfo") as f:
        points = [unescape(line.split()[4]) for line in f]
    return [p for p in points if p.startswith(prefix)]


def teardown_home(home: Path) -> None:
    for point in sorted(set(mounts_under(home)), key=len, reverse=True):  # deepest first
        for _ in range(10):  # stacked mounts need one umount each
            if point not in mounts_under(home):
                break
            if subprocess.run(["umount", point], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", point], capture_output=True)
    for bare in home.glob("storage/*/exports/*"):  # immutable while unmounted
        subprocess.run(["chattr", "-i", str(bare)], capture_output=True)
    for image in home.glob("storage/*/pool.img"):
        out = subprocess.run(["losetup", "-j", str(image)], capture_output=True, text=True)
        for line in out.stdout.splitlines():
            subprocess.run(["losetup", "-d", line.split(":")[0]], capture_output=True)
    shutil.rmtree(home, ignore_errors=True)


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

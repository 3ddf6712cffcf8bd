"""Fixtures shared by every tier."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUEST_CACHE = Path("/var/cache/vmflow/tiny-guest")


@pytest.fixture(scope="session")
def tiny_guest() -> Path:
    """The tiny guest, built once per machine (make up builds the same cache)."""
    subprocess.run([str(ROOT / "vmflow/setup/build-tiny-guest.sh"), str(GUEST_CACHE)], check=True)
    return GUEST_CACHE


def qemu_home(prefix: str) -> Path:
    """A VMFLOW_HOME qemu (libvirt-qemu) can traverse and O_DIRECT works in: not tmpfs."""
    path = Path(tempfile.mkdtemp(prefix=f"vmflow-{prefix}-", dir="/var/tmp"))
    path.chmod(0o755)
    return path


# temporalio/sdk-python#300: a process that ran Temporal workers can abort while the
# interpreter finalizes; leave with pytest's own exit status once it has reported.
@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(getattr(config, "_vmflow_exitstatus", 0)))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config._vmflow_exitstatus = exitstatus  # type: ignore[attr-defined]

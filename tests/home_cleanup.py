"""Removing a test home that holds a share pool: its mounts (deepest first), the
immutable bare mount points, the loop devices, then the files."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from vmflow.mountinfo import mounts


def mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve()) + "/"
    return [point for _, point in mounts() if point.startswith(prefix)]


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

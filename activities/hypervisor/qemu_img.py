"""qemu-img, always with an explicit format (-f/-F) and under CPU and memory limits,
because image files may come from users (DESIGN decision 10)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from vmflow.settings import Settings


class QemuImgError(RuntimeError):
    pass


def run(settings: Settings, *args: str) -> str:
    cmd = [
        "prlimit",
        f"--cpu={settings.qemu_img_cpu_seconds}",
        f"--as={settings.qemu_img_memory_mb * 1024 * 1024}",
        "qemu-img",
        *args,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise QemuImgError(f"qemu-img {args[0]} failed: {proc.stderr.strip()}")
    return proc.stdout


def info(settings: Settings, path: str, fmt: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(run(settings, "info", "-f", fmt, "--output=json", path))
    return out


def create_overlay(settings: Settings, path: str, base: str, base_fmt: str,
                   size_gb: int | None = None) -> None:
    """A qcow2 overlay on `base`; without a size it is the base's virtual size."""
    size = [f"{size_gb}G"] if size_gb else []
    run(settings, "create", "-q", "-f", "qcow2", "-F", base_fmt, "-b", base, path, *size)


def create(settings: Settings, path: str, fmt: str, size_bytes: int) -> None:
    """An empty image (no backing file) of `size_bytes`."""
    run(settings, "create", "-q", "-f", fmt, path, str(size_bytes))


def convert(settings: Settings, src: str, src_fmt: str, dst: str, dst_fmt: str,
            *options: str) -> None:
    """A standalone copy of `src`: its backing chain is read through and flattened."""
    run(settings, "convert", "-q", *options, "-f", src_fmt, "-O", dst_fmt, src, dst)


def data_extents(settings: Settings, src: str, fmt: str) -> list[tuple[int, int]]:
    """(offset, length) of every range of `src` that holds data; the rest reads as
    zeros (holes, and ranges the format knows are zero)."""
    out = json.loads(run(settings, "map", "-f", fmt, "--output=json", src))
    return [(int(e["start"]), int(e["length"])) for e in out
            if e.get("data") and not e.get("zero")]

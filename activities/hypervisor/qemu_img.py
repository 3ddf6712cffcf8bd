"""qemu-img, always with an explicit format (-f/-F) and under CPU and memory limits,
because image files may come from users (DESIGN decision 10)."""

from __future__ import annotations

import ctypes
import json
import re
import signal
import subprocess
import time
from collections.abc import Callable
from typing import Any

from activities.hypervisor.underlay import in_host_netns
from vmflow.settings import Settings

PR_SET_PDEATHSIG = 1
PROGRESS = re.compile(r"\(([0-9.]+)/100%\)")


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


def rebase_unsafe(settings: Settings, path: str, fmt: str, base: str, base_fmt: str) -> None:
    """Point `path` at another copy of the same base (`-u`: no data is read or copied)."""
    run(settings, "rebase", "-u", "-f", fmt, "-F", base_fmt, "-b", base, path)


def grow(settings: Settings, path: str, fmt: str, size_gb: int) -> None:
    """Grow the virtual size to `size_gb` (never shrinks: callers refuse that first)."""
    if int(info(settings, path, fmt).get("virtual-size", 0)) < size_gb * 2**30:
        run(settings, "resize", "-f", fmt, path, f"{size_gb}G")


def _die_with_parent() -> None:
    """In the child before exec: killed with the worker that started it (a copy no
    workflow waits for must not go on writing)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def pull_nbd(settings: Settings, url: str, dst: str, on_progress: Callable[[float], None],
             timeout_s: float = 3600) -> None:
    """Copy an NBD export's bytes into `dst` as they are (`-f raw -O raw`, sparse),
    from inside the host's network namespace; `on_progress(fraction)` as they arrive."""
    argv = in_host_netns(settings, [
        "prlimit", f"--cpu={settings.qemu_img_cpu_seconds}",
        f"--as={settings.qemu_img_memory_mb * 1024 * 1024}",
        "qemu-img", "convert", "-p", "-f", "raw", "-O", "raw", url, dst])
    deadline = time.monotonic() + timeout_s
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          preexec_fn=_die_with_parent) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        for line in proc.stdout:  # "    (12.34/100%)" per step (no TTY: one a line)
            m = PROGRESS.search(line)
            if m:
                on_progress(float(m.group(1)) / 100)
            if time.monotonic() > deadline:
                proc.kill()
                break
        err = proc.stderr.read()
        if proc.wait() != 0:
            raise QemuImgError(f"qemu-img convert from {url} failed: {err.strip()}")

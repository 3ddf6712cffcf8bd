"""A fault point for the fault tier: kill this worker dead right before or right after
a named activity's attempt N. Installed only when VMFLOW_FAULT_POINTS is set (the
test stack's setting); a production worker has no interceptor at all.

While installed, each activity attempt reads `<home>/fault-point.json`
({"activity", "when": "before"|"after", "attempt", optional "workflow_type",
"activity_id", "queue"}); absent file: nothing happens. On a match it appends what
fired to `<home>/fault-fired.jsonl` (fsync'd) and SIGKILLs its own process group:
no cleanup, no result reported. "after" means the body ran and returned, and
Temporal never heard of it. Reading the spec, recording and dying happen under
`<home>/fault-point.lock`, which `disarm` takes too: once disarm returns, a worker
that read the spec before is already dead (so the harness restarts it), never about
to die behind its back.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from vmflow.settings import Settings

SPEC_FILE = "fault-point.json"
FIRED_FILE = "fault-fired.jsonl"
LOCK_FILE = "fault-point.lock"


@contextmanager
def _spec_lock(home: Path) -> Iterator[int]:
    """Held from reading the spec to the kill; the kernel drops it when we die. The
    file holds the pid of the worker that fired last, until disarm reads it."""
    fd = os.open(home / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)


def disarm(home: Path, wait_s: float = 30) -> None:
    """No activity fires from now on; one that fired has exited by the return (the
    kernel drops its lock while it exits, a moment before the exit is visible)."""
    with _spec_lock(home) as fd:
        (home / SPEC_FILE).unlink(missing_ok=True)
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        os.ftruncate(fd, 0)
    if not text.isdigit():
        return
    deadline = time.monotonic() + wait_s
    while _running(int(text)) and time.monotonic() < deadline:
        time.sleep(0.01)


def _die(lock: int) -> None:
    """SIGKILL, as `kill -9` of the component: the whole group if we lead one (its
    qemu-img children too). Our pid stays in the lock file for disarm to wait on."""
    os.pwrite(lock, str(os.getpid()).encode(), 0)
    if os.getpgid(0) == os.getpid():
        os.killpg(os.getpid(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def _running(pid: int) -> bool:
    """Neither gone nor a zombie (one the harness's own child leaves until reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def matches(spec: dict[str, Any], info: activity.Info, when: str) -> bool:
    """Does the spec name this attempt of this activity at this moment?"""
    wanted = {
        "activity": info.activity_type,
        "when": when,
        "attempt": info.attempt,
        "workflow_type": info.workflow_type,
        "activity_id": info.activity_id,
        "queue": info.task_queue,
    }
    return all(spec.get(k) in (None, v) for k, v in wanted.items()) and "activity" in spec


class FaultPointActivity(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, home: Path) -> None:
        super().__init__(next)
        self.home = home

    def _spec(self) -> dict[str, Any] | None:
        try:
            spec = json.loads((self.home / SPEC_FILE).read_text())
        except (OSError, ValueError):
            return None
        return spec if isinstance(spec, dict) else None

    def _maybe_die(self, when: str) -> None:
        if not (self.home / SPEC_FILE).exists():  # the common case, without the lock
            return
        with _spec_lock(self.home) as lock:
            self._die_if_named(when, lock)

    def _die_if_named(self, when: str, lock: int) -> None:
        spec = self._spec()
        if spec is None:
            return
        info = activity.info()
        if not matches(spec, info, when):
            return
        fired = {"activity": info.activity_type, "when": when, "attempt": info.attempt,
                 "activity_id": info.activity_id, "queue": info.task_queue,
                 "workflow_id": info.workflow_id, "workflow_type": info.workflow_type,
                 "pid": os.getpid(), "at": time.time()}
        fd = os.open(self.home / FIRED_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (json.dumps(fired) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        _die(lock)

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        self._maybe_die("before")
        result = await self.next.execute_activity(input)
        self._maybe_die("after")
        return result


class FaultPoints(Interceptor):
    def __init__(self, home: Path) -> None:
        self.home = home

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return FaultPointActivity(next, self.home)


def interceptors(settings: Settings) -> list[Interceptor]:
    """What a worker installs: nothing unless the stack enabled fault points."""
    return [FaultPoints(settings.home)] if settings.fault_points else []

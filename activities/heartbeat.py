"""Heartbeats for host steps that block in one long libvirt call (managed save,
destroy under TCG): a side thread heartbeats while the step runs, so a worker
killed mid-step is noticed within the heartbeat timeout, not the step's timeout."""

from __future__ import annotations

import contextvars
import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from temporalio import activity

F = TypeVar("F", bound=Callable[..., Any])
INTERVAL_S = 2.0


def heartbeating(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        done = threading.Event()
        ctx = contextvars.copy_context()  # the activity context lives in contextvars

        def beat() -> None:
            while not done.wait(INTERVAL_S):
                ctx.run(activity.heartbeat)

        side = threading.Thread(target=beat, daemon=True)
        side.start()
        try:
            return fn(*args, **kwargs)
        finally:
            done.set()
            side.join()

    return wrapper  # type: ignore[return-value]

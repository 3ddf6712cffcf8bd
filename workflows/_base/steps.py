"""How workflows call activities: control steps on `control`, host steps on
`hv.<host>`, one retry policy, and readable messages out of activity failures."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    FailureError,
    TimeoutError,
    TimeoutType,
)

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.control_stub import ControlStub
    from vmflow.contracts.errors import Errors
    from vmflow.contracts.host_stub import HostStub
    from vmflow.contracts.instances import StepStatus
    from vmflow.names import CONTROL_QUEUE, hv_queue

T = TypeVar("T")
A = TypeVar("A")  # an activity's input
R = TypeVar("R")  # ... and its result, both read off its stub


def retry(attempts: int) -> RetryPolicy:
    """attempts=0: until the step's schedule_to_close (undo steps must not give up early)."""
    return RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=30),
        maximum_attempts=attempts,
        non_retryable_error_types=Errors.ALL,
    )


async def control(act: Callable[[ControlStub, A], Awaitable[R]], arg: A) -> R:
    """Run a control step: `control(ControlStub.schedule, request)`; the stub gives
    the activity's name and its result type, and mypy checks the input against it."""
    return await workflow.execute_activity_method(
        act,
        arg,
        task_queue=CONTROL_QUEUE,
        start_to_close_timeout=timedelta(seconds=30),
        schedule_to_close_timeout=timedelta(minutes=10),
        retry_policy=retry(0),
    )


async def on_host(
    host: str,
    act: Callable[[HostStub, A], Awaitable[R]],
    arg: A,
    *,
    schedule_to_start_s: float | None = None,
    timeout_s: float = 120,
    heartbeat_s: float = 10,
    give_up_after_s: float = 900,
    attempts: int = 5,
) -> R:
    """Run a step on a host's own queue: `on_host(host, HostStub.observe, ref)`.

    schedule_to_start_s bounds how long a host may take to pick the step up, so a
    dead host is noticed in seconds; every host step heartbeats (see
    activities/heartbeat.py), so a retry starts soon after a worker dies mid-step.
    Forward steps try a few times; undo steps pass attempts=0.
    """
    return await workflow.execute_activity_method(
        act,
        arg,
        task_queue=hv_queue(host),
        schedule_to_start_timeout=(
            timedelta(seconds=schedule_to_start_s) if schedule_to_start_s else None
        ),
        start_to_close_timeout=timedelta(seconds=timeout_s),
        schedule_to_close_timeout=timedelta(seconds=give_up_after_s),
        heartbeat_timeout=timedelta(seconds=heartbeat_s),
        retry_policy=retry(attempts),
    )


def root_cause(err: BaseException) -> BaseException:
    while isinstance(err, ActivityError) and err.cause is not None:
        err = err.cause
    return err


def not_picked_up(err: BaseException) -> bool:
    """True when a host never started the step: its worker is dead or stuck."""
    cause = root_cause(err)
    return isinstance(cause, TimeoutError) and cause.type == TimeoutType.SCHEDULE_TO_START


def error_type(err: BaseException) -> str:
    cause = root_cause(err)
    if isinstance(cause, ApplicationError) and cause.type:
        return cause.type
    if isinstance(cause, CancelledError | asyncio.CancelledError):
        return "Cancelled"
    return type(cause).__name__


def describe(err: BaseException) -> str:
    """One line a user can read: the innermost message, not the wrapping."""
    cause = root_cause(err)
    if isinstance(cause, TimeoutError):
        return f"a step timed out ({cause.type.name if cause.type else 'timeout'})"
    if isinstance(cause, CancelledError | asyncio.CancelledError):
        return "the operation was cancelled"
    if isinstance(cause, FailureError):
        return cause.message
    return str(cause) or type(cause).__name__


async def all_of(*steps: Awaitable[T]) -> list[T]:
    """Run steps concurrently and wait for every one to end before raising the first
    failure, so no sibling is still running on a host while compensation starts."""
    results = await asyncio.gather(*steps, return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return list(results)  # type: ignore[arg-type]


class Reporting:
    """The `status` query every operation workflow answers: its step, progress and
    host, which the API shows on the operation."""

    def __init__(self, step: str = "starting") -> None:
        self._status = StepStatus(step=step, progress=None, host=None)

    @workflow.query(name="status")
    def status(self) -> StepStatus:
        return self._status

    def at(self, step: str, progress: int | None = None, host: str | None = None) -> None:
        self._status = StepStatus(step, progress, host or self._status.host)

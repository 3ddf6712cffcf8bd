"""The shape shared by the timers that start an operation later (auto-unrescue,
shelve-offload, auto-confirm): sleep, then ask the control side to start the
operation as the API would; a server busy with another operation is asked again
every busy_retry_s for up to a day. Each timer is a workflow of its own beside
`instance-<id>`, so the server stays free while it waits."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.actions import TimerStep

BUSY_FOR_AT_MOST = timedelta(days=1)


async def start_later(after_s: float, busy_retry_s: float, what: str,
                      step: Callable[[], Awaitable[TimerStep]]) -> str:
    """What happened, for the workflow's result: `<what> started: operation <id>`,
    `nothing to do: <reason>` or `gave up: <reason>`."""
    await workflow.sleep(timedelta(seconds=after_s))
    give_up = workflow.now() + BUSY_FOR_AT_MOST
    while True:
        done = await step()
        if not done.busy:
            return (f"{what} started: operation {done.operation_id}"
                    if done.operation_id else f"nothing to do: {done.reason}")
        if workflow.now() >= give_up:
            return f"gave up: {done.reason}"
        await workflow.sleep(timedelta(seconds=busy_retry_s))

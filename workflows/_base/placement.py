"""Placement with rescheduling, for every operation that puts a guest on a host
(launch, unshelve, resize and cold migration).

Schedule, try the best host; when its worker does not take the step within the
schedule-to-start timeout, undo the try (the claim) and schedule again with that host
and why it failed, up to `attempts` hosts. The scheduler rejects tried hosts with
their reason and, once the attempts are used up, the rest as "not tried", so the one
NoValidHost it raises names every host and why. A claim refused because concurrent
placements took the host's room between the schedule and the claim (NoCapacity) is
given up and rescheduled the same way, as Nova reschedules a failed claim, so 50
launches at once do not fail while other hosts have room. When the first host takes
the step the commands are exactly schedule + the try: nothing is added to the success
path."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TypeVar

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.control_stub import ControlStub
    from vmflow.contracts.errors import Errors
    from vmflow.contracts.instances import ScheduleRequest

from workflows._base.steps import control, not_picked_up, root_cause

ROOM_TAKEN = "its room went to a concurrent claim"

T = TypeVar("T")


def claim_refused(err: BaseException) -> bool:
    """The try's claim found no room left on the host (ControlActivities.claim)."""
    cause = root_cause(err)
    return isinstance(cause, ApplicationError) and cause.type == Errors.NO_CAPACITY


def not_taken(schedule_to_start_s: float) -> str:
    """Why a tried host was given up, as NoValidHost shows it."""
    return f"did not take the step within {schedule_to_start_s:g}s"


async def place(
    request: ScheduleRequest,
    attempts: int,
    schedule_to_start_s: float,
    attempt: Callable[[str], Awaitable[T]],
    give_up: Callable[[str], Awaitable[None]],
) -> tuple[str, T]:
    """Return (host, what `attempt(host)` returned) for the first host that takes the
    step. `attempt` claims the host and runs the first step there (with the
    schedule-to-start timeout); `give_up(host)` undoes that claim. Any other failure
    of `attempt` is raised as it is; NoValidHost comes from the schedule step."""
    tried: dict[str, str] = {}
    for _ in range(attempts + 1):  # the last schedule finds the attempts used up
        # hosts the caller rules out with a reason (a move's source) in request.tried
        # stay ruled out and do not use up attempts
        req = replace(request, exclude_hosts=[*request.exclude_hosts, *tried],
                      tried={**request.tried, **tried}, attempts=attempts + len(request.tried))
        host = (await control(ControlStub.schedule, req)).hosts[0]
        try:
            return host, await attempt(host)
        except Exception as err:
            if not_picked_up(err):
                why = not_taken(schedule_to_start_s)
            elif claim_refused(err):
                why = ROOM_TAKEN
            else:
                raise
            workflow.logger.warning("host %s: %s; rescheduling", host, why)
            await give_up(host)
            tried[host] = why
    # unreachable while the scheduler honours `attempts`; still a bounded, readable end
    detail = "; ".join(f"{h}: {why}" for h, why in sorted(tried.items()))
    raise ApplicationError(f"No valid host was found. {len(tried)} host(s) rejected: {detail}.",
                           type=Errors.NO_VALID_HOST, non_retryable=True)

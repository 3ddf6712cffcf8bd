"""A hypervisor worker announces its host (capacity, traits) through the control
plane, so hosts never need database access. Then the guests evacuated away from the
host while it was down are removed there instead of being started again
(workflows/_base/evacuated.py)."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.control_stub import ControlStub
    from vmflow.contracts.instances import HostInfo

from workflows._base.evacuated import remove_evacuated
from workflows._base.steps import control

# the worker that registers starts polling right after: a minute is plenty
CLEANUP_PICKUP_S = 60


@workflow.defn(name="RegisterHost")
class RegisterHost:
    @workflow.run
    async def run(self, info: HostInfo) -> None:
        await control(ControlStub.register_host, info)
        workflow.deprecate_patch("remove-evacuated")
        await remove_evacuated(info.name, CLEANUP_PICKUP_S)

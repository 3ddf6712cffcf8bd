"""A hypervisor worker announces its host (capacity, traits) through the control
plane, so hosts never need database access."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.control_stub import ControlStub
    from vmflow.contracts.instances import HostInfo

from workflows._base.steps import control


@workflow.defn(name="RegisterHost")
class RegisterHost:
    @workflow.run
    async def run(self, info: HostInfo) -> None:
        await control(ControlStub.register_host, info)

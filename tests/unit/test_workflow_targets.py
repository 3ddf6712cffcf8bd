"""A workflow's vm_state comes from vmflow.states (the target of its action in
TRANSITIONS, or a VmState member), never from a string literal restated in the
workflow, so the state table stays the one place that says where an action ends."""

from __future__ import annotations

import ast
from pathlib import Path

from vmflow.states import TRANSITIONS, VmState

ROOT = Path(__file__).resolve().parents[2]
# share workflows have their own vocabulary (vmflow.share_states), where "error" is a
# share or share snapshot status, not a vm_state
INSTANCE_PACKAGES = ("workflows/instance", "workflows/_base", "workflows/background")
VM_STATES = {s.value for s in VmState}


def vm_state_literals(source: str) -> list[str]:
    return [f"line {n.lineno}: {n.value!r}" for n in ast.walk(ast.parse(source))
            if isinstance(n, ast.Constant) and n.value in VM_STATES]


def test_instance_workflows_restate_no_vm_state() -> None:
    found = {str(p.relative_to(ROOT)): vm_state_literals(p.read_text())
             for package in INSTANCE_PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}
    assert {f: lines for f, lines in found.items() if lines} == {}


def test_the_check_sees_a_restated_target() -> None:
    source = '''
await self.run_action(start, "stopped", body)
await control(ControlStub.update_instance, InstanceUpdate(i, vm_state="active"))
await self.run_action(start, TRANSITIONS[start.action].target, body)
'''
    assert vm_state_literals(source) == ["line 2: 'stopped'", "line 3: 'active'"]


def test_every_action_workflow_reads_its_target_from_the_table() -> None:
    """Each instance action module hands run_action the table's target of its action."""
    wanted = "TRANSITIONS[start.action].target"
    actions = {t.workflow for t in TRANSITIONS.values() if t.workflow}
    modules = [p for p in sorted((ROOT / "workflows/instance").glob("*.py"))
               if "self.run_action(" in p.read_text()]
    assert modules, "no action workflow found"
    for path in modules:
        text = path.read_text()
        assert wanted in text, path.name
        assert any(f'@workflow.defn(name="{a}")' in text for a in actions), path.name

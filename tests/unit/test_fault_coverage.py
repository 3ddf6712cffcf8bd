"""Every workflow type the control worker registers has a kill-matrix case, so a type
added later without one fails here rather than going untested. The cases are read from
the source (tests/faults/cases.py imports the integration stack's helpers, libvirt
included, which the unit tier does not load)."""

from __future__ import annotations

import ast
from pathlib import Path

from temporalio import workflow

from workflows.registry import ALL

FAULTS = Path(__file__).parents[1] / "faults"


def case_types(path: Path) -> list[str]:
    """The workflow types of a cases file: each `Case("<type>", ...)`, and the strings
    of a module-level `..._TYPES = {...}` (a list of many-host types)."""
    tree = ast.parse(path.read_text())
    found: list[str] = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == "Case" and node.args
                and isinstance(node.args[0], ast.Constant)):
            found.append(str(node.args[0].value))
    for stmt in tree.body:
        target = stmt.targets[0] if isinstance(stmt, ast.Assign) else (
            stmt.target if isinstance(stmt, ast.AnnAssign) else None)
        value = getattr(stmt, "value", None)
        if (isinstance(target, ast.Name) and target.id.endswith("_TYPES")
                and isinstance(value, ast.Set | ast.List | ast.Tuple)):
            found += [str(e.value) for e in value.elts if isinstance(e, ast.Constant)]
    return found


def registered() -> set[str]:
    return {str(workflow._Definition.must_from_class(cls).name) for cls in ALL}


def test_every_workflow_type_has_a_kill_matrix_case() -> None:
    single = case_types(FAULTS / "cases.py")
    many = set(case_types(FAULTS / "multihost_cases.py"))
    missing = registered() - set(single) - many
    assert not missing, (f"no kill-matrix case for {sorted(missing)}: add one to "
                         "tests/faults/cases.py (or multihost_cases.py)")


def test_every_case_names_a_registered_type_once() -> None:
    single = case_types(FAULTS / "cases.py")
    assert len(single) == len(set(single)), sorted(single)
    assert not set(single) - registered(), sorted(set(single) - registered())
    many = case_types(FAULTS / "multihost_cases.py")
    assert len(many) == len(set(many)) and not set(many) & set(single), sorted(many)
    assert not set(many) - registered(), sorted(set(many) - registered())


def test_cases_are_read_from_the_source() -> None:
    """The reader finds the cases the matrix runs (so it cannot pass on an empty read)."""
    single = case_types(FAULTS / "cases.py")
    assert {"LaunchInstance", "ReconcileLedger", "ShelveOffloadInstance"} <= set(single)
    assert len(single) >= 29
    assert {"ResizeInstance", "SyncFloatingIp"} <= set(case_types(FAULTS / "multihost_cases.py"))

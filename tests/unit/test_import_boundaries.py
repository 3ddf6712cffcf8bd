"""The house rules as a test: workflows import only contracts, states and names; the
API never imports libvirt or activities; activities never import fastapi; the three
activity groups (control, hypervisor, storage) never import each other, since each
runs in a different worker on a different machine."""

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GROUPS = ("control", "hypervisor", "storage")


def imports(package: str, root: Path = ROOT) -> list[tuple[str, str]]:
    found = []
    for path in (root / package).rglob("*.py"):
        rel = str(path.relative_to(root))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found += [(rel, a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                found.append((rel, node.module))
                if node.module == "activities":  # from activities import hypervisor
                    found += [(rel, f"activities.{a.name}") for a in node.names]
    return found


def test_workflows_import_only_contracts_states_and_names() -> None:
    allowed = ("vmflow.contracts", "vmflow.states", "vmflow.share_states", "vmflow.names",
               "workflows", "temporalio", "__future__", "asyncio", "datetime", "typing",
               "collections", "dataclasses")
    bad = [(f, m) for f, m in imports("workflows") if not m.startswith(allowed)]
    assert bad == []


def test_contracts_import_only_the_standard_library_and_temporalio() -> None:
    """Payloads and activity stubs stay cheap to load in the workflow sandbox."""
    bad = [(f, m) for f, m in imports("vmflow/contracts")
           if m.split(".")[0] not in sys.stdlib_module_names
           and not m.startswith(("temporalio", "vmflow.contracts"))]
    assert bad == []


@pytest.mark.parametrize("package,forbidden", [("api", "libvirt"), ("api", "activities"),
                                               ("api", "workflows"),
                                               ("activities", "fastapi"), ("vmflow", "libvirt"),
                                               ("vmflow", "activities"),
                                               ("vmflow", "workflows")])
def test_forbidden_imports(package: str, forbidden: str) -> None:
    assert [(f, m) for f, m in imports(package) if m.split(".")[0] == forbidden] == []


@pytest.mark.parametrize("group", GROUPS)
def test_activity_groups_do_not_import_each_other(group: str) -> None:
    others = [f"activities.{g}" for g in GROUPS if g != group]
    bad = [(f, m) for f, m in imports(f"activities/{group}")
           if any(m == o or m.startswith(o + ".") for o in others)]
    assert bad == []


def test_every_activity_module_is_in_a_group() -> None:
    """Only the shared helpers (errors, heartbeat) may sit beside the three groups."""
    loose = sorted(p.name for p in (ROOT / "activities").glob("*.py"))
    assert loose == ["__init__.py", "errors.py", "heartbeat.py"]


def test_the_boundary_check_sees_a_crossing(tmp_path: Path) -> None:
    """The check itself can fail: both spellings of a crossing import are seen."""
    (tmp_path / "activities" / "storage").mkdir(parents=True)
    (tmp_path / "activities" / "storage" / "x.py").write_text(
        "from activities.hypervisor import qemu_img\nfrom activities import control\n")
    found = [m for _, m in imports("activities/storage", tmp_path)]
    assert "activities.hypervisor" in found and "activities.control" in found

"""The house rules as a test: workflows import only contracts and names; the API
never imports libvirt; activities never import fastapi."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def imports(package: str) -> list[tuple[str, str]]:
    found = []
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found += [(path.name, a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                found.append((path.name, node.module))
    return found


def test_workflows_import_only_contracts_and_names() -> None:
    allowed = ("vmflow.contracts", "vmflow.share_contracts", "vmflow.reconcile_contracts",
               "vmflow.snapshot_contracts", "vmflow.share_states",
               "vmflow.names", "workflows", "temporalio", "__future__",
               "asyncio", "datetime", "typing", "collections")
    bad = [(f, m) for f, m in imports("workflows") if not m.startswith(allowed)]
    assert bad == []


@pytest.mark.parametrize("package,forbidden", [("api", "libvirt"), ("api", "activities"),
                                               ("activities", "fastapi"), ("vmflow", "libvirt")])
def test_forbidden_imports(package: str, forbidden: str) -> None:
    assert [(f, m) for f, m in imports(package) if m.split(".")[0] == forbidden] == []

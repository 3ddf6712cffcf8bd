"""docs/architecture.md shows the tree as it is: the generated block is current."""

from pathlib import Path

import pytest

from vmflow import layout


def test_architecture_tree_is_current() -> None:
    doc = layout.DOC.read_text()
    assert doc == layout.render(doc), "run: python -m vmflow.layout"


def test_tree_lists_every_module() -> None:
    tree = layout.tree()
    for package in layout.PACKAGES:
        for path in (layout.ROOT / package).rglob("*.py"):
            if layout.SKIP & set(path.relative_to(layout.ROOT).parts) or path.name == "__init__.py":
                continue
            assert f" {path.name}" in tree, path


def test_a_new_module_makes_the_doc_stale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check can fail: a module the document does not list is seen."""
    doc = layout.DOC.read_text()
    pkg = tmp_path / "vmflow"
    pkg.mkdir()
    (pkg / "__init__.py").write_text('"""x."""\n')
    (pkg / "brand_new.py").write_text('"""Something new."""\n')
    monkeypatch.setattr(layout, "ROOT", tmp_path)
    monkeypatch.setattr(layout, "PACKAGES", ("vmflow",))
    assert "brand_new.py" in layout.render(doc) and layout.render(doc) != doc


def test_every_module_says_what_it_is() -> None:
    """A module without a docstring would show as a bare name in the tree."""
    bare = [str(p.relative_to(layout.ROOT)) for package in layout.PACKAGES
            for p in (layout.ROOT / package).rglob("*.py")
            if not layout.SKIP & set(p.relative_to(layout.ROOT).parts) and not layout.summary(p)]
    assert bare == []

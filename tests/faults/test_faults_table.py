"""bench/faults_table.py: the shards' results become one row per boundary, the last
run of a boundary counts, and a boundary not reached or broken is not shown as ok."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.faults_table import load, table, verdict


def row(name: str, **over: Any) -> dict[str, Any]:
    wf, act, when = name.split(":")
    return {"workflow_type": wf, "activity": act, "activity_id": "3", "when": when,
            "kind": "storage", "repeated": False, "name": name, "fired": True,
            "outcome": "succeeded", "violations": [], "seconds": 1.0, "mode": "full", **over}


def test_rows_from_shards(tmp_path: Path) -> None:
    a, b = tmp_path / "shard-0.jsonl", tmp_path / "shard-1.jsonl"
    a.write_text(json.dumps(row("ExtendShare:storage.resize_share:after",
                                violations=["share extending"])) + "\n")
    b.write_text("\n".join(json.dumps(r) for r in [
        row("CreateShare:storage.create_share:before", fired=False),
        row("ExtendShare:storage.resize_share:after")]) + "\n")
    rows = load([a, b, tmp_path / "absent.jsonl"])
    assert [r["name"] for r in rows] == ["CreateShare:storage.create_share:before",
                                         "ExtendShare:storage.resize_share:after"]
    assert [verdict(r) for r in rows] == ["NOT REACHED", "ok"]
    assert verdict(row("X:y:after", violations=["task_state deleting"])).startswith("FAIL")
    md = table(rows, {"finished": "now", "wall_s": 5})
    assert "2 boundaries over 2 workflow types (storage 2), 1 not ok" in md
    assert "| ExtendShare | storage.resize_share | after | storage | succeeded | ok | 1.0 |" in md

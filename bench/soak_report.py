"""The soak's figures: operations per type and how they ended, faults per kind, 409s,
invariant violations and the slowest operation per type; printed and returned."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any


def report(result: dict[str, Any]) -> dict[str, Any]:
    records: list[dict[str, Any]] = result["records"]
    ops: dict[str, Counter[str]] = defaultdict(Counter)
    slowest: dict[str, dict[str, Any]] = {}
    for r in records:
        ops[r["kind"]][r["status"]] += 1
        if r["kind"] not in slowest or r["seconds"] > slowest[r["kind"]]["seconds"]:
            slowest[r["kind"]] = {"seconds": r["seconds"], "op": r["op"],
                                  "resource": r["resource"]}
    faults = Counter(f["kind"] for f in result["faults"])
    summary = {
        "seed": result["seed"], "options": result["options"], "wall_s": result["wall_s"],
        "actions_started": result["started"],
        "operations": {k: dict(v) for k, v in sorted(ops.items())},
        "operations_total": len(records),
        "faults": dict(sorted(faults.items())), "faults_total": sum(faults.values()),
        "recover_errors": [f for f in result["faults"] if f["recover_error"]],
        "conflicts_409": dict(sorted(result["conflicts"].items())),
        "conflicts_409_total": sum(result["conflicts"].values()),
        "unavailable": result["unavailable"], "refused": result["refused"],
        "violations": result["violations"], "violations_total": len(result["violations"]),
        "slowest": dict(sorted(slowest.items())), "notes": result["notes"],
    }
    print(f"\n== soak, seed {summary['seed']}, {summary['wall_s']} s wall ==")
    print(f"operations run: {summary['operations_total']}")
    for kind, ends in summary["operations"].items():
        slow = slowest[kind]
        print(f"  {kind:<16} {sum(ends.values()):>4}  {dict(ends)}  slowest "
              f"{slow['seconds']:.1f} s ({slow['op']})")
    print(f"faults injected: {summary['faults_total']}  {summary['faults']}")
    for f in summary["recover_errors"]:
        print(f"  recovery failed after {f['kind']} {f['target']}: {f['recover_error']}")
    print(f"409 (not now): {summary['conflicts_409_total']}  {summary['conflicts_409']}")
    if summary["unavailable"]:
        print(f"no answer / 5xx: {summary['unavailable']}")
    if summary["refused"]:
        print(f"other refusals: {summary['refused']}")
    for note in summary["notes"]:
        print(f"note: {note}")
    print(f"invariant violations: {summary['violations_total']} (target 0)")
    for v in summary["violations"]:
        print(f"  {v}")
    return summary

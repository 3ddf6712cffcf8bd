"""bench/concurrency.py's figures: per N and phase, wall time, p50/p95 per operation
and the ratio wall(vmflow) / wall(direct); the table it prints; the latency CDFs."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from bench.plotting import pyplot

TARGET = 1.2  # launches, at every N (issue 15)
PHASES = ("launch", "snapshot", "mixed")
SIDES = ("vmflow", "direct")


def pct(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (no interpolation between a handful of values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)]


def figures(ops: list[dict[str, Any]]) -> dict[str, Any]:
    done = [op for op in ops if not op["error"]]
    lat = [op["end"] - op["start"] for op in done]
    by_kind = {k: pct([op["end"] - op["start"] for op in done if op["kind"] == k], 0.5)
               for k in sorted({op["kind"] for op in ops})}
    return {"ops": len(ops), "failed": len(ops) - len(done),
            "errors": [op["error"] for op in ops if op["error"]][:5],
            "wall_s": (max(op["end"] for op in ops) - min(op["start"] for op in ops)
                       if ops else None),
            "p50_s": pct(lat, 0.5), "p95_s": pct(lat, 0.95), "latencies_s": lat,
            "p50_by_kind_s": by_kind}


def summarize(n: int, sides: dict[str, Any]) -> dict[str, Any]:
    """One N's entry of concurrent.json, printed as a table as well."""
    out: dict[str, Any] = {"n": n}
    print(f"\nN={n}  {'phase':<9} {'side':<7} {'wall s':>8} {'p50 s':>7} {'p95 s':>7}"
          f" {'failed':>6} {'ratio':>6}")
    for phase in PHASES:
        per = {side: figures(sides[side]["phases"][phase]) for side in SIDES}
        walls = [per[side]["wall_s"] for side in SIDES]
        ratio = walls[0] / walls[1] if all(walls) else None
        out[phase] = {**per, "ratio": ratio}
        for side in SIDES:
            f = per[side]
            print(f"{'':<4} {phase:<9} {side:<7} {_s(f['wall_s'], 8)} {_s(f['p50_s'], 7)}"
                  f" {_s(f['p95_s'], 7)} {f['failed']:>6}"
                  f" {_s(ratio, 6, 2) if side == 'direct' else '':>6}")
            for error in f["errors"]:
                print(f"{'':<14}failed: {error[:150]}")
    out["ratio"] = out["launch"]["ratio"]
    out["meets_target"] = out["ratio"] is not None and out["ratio"] <= TARGET
    out["target"] = TARGET
    out["snapshot_ratio"], out["mixed_ratio"] = out["snapshot"]["ratio"], out["mixed"]["ratio"]
    out["loadavg"] = {side: {"before": sides[side]["loadavg_before"],
                             "after": sides[side]["loadavg_after"]} for side in SIDES}
    out["side_s"] = {side: sides[side]["side_s"] for side in SIDES}
    verdict = "meets" if out["meets_target"] else "misses"
    print(f"     launch ratio {_s(out['ratio'], 0, 2)}: {verdict} the ≤ {TARGET}× target",
          flush=True)
    return out


def _s(x: float | None, width: int, digits: int = 2) -> str:
    return f"{x:>{width}.{digits}f}" if x is not None else f"{'-':>{width}}"


def plot(result: dict[str, Any], path: Path) -> None:
    """Latency CDFs: a row per N, a column per phase, vmflow beside direct."""
    plt = pyplot()
    if plt is None:
        return
    rows = result["ns"]
    fig, axes = plt.subplots(len(rows), len(PHASES), figsize=(11, 2.6 * len(rows)),
                             squeeze=False)
    for row, entry in zip(axes, rows, strict=True):
        for ax, phase in zip(row, PHASES, strict=True):
            for side, label in (("vmflow", "vmflow (API)"), ("direct", "direct")):
                lat = sorted(entry[phase][side]["latencies_s"])
                if lat:  # from (0, 0), so that a single operation shows as a step too
                    ax.step([0.0, *lat], [i / len(lat) for i in range(len(lat) + 1)],
                            where="post", label=label)
            ratio = entry[phase]["ratio"]
            ax.set(title=f"N={entry['n']} {phase}: wall ratio "
                         f"{'-' if ratio is None else f'{ratio:.2f}×'}",
                   xlabel="seconds per operation", ylabel="fraction done", ylim=(0, 1.05),
                   xlim=(0, None))
            ax.title.set_fontsize(9)
            ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{result['virt_type']} guests, {result['cpus']} CPUs, {result['date']}",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path}")

"""bench/concurrent_report.py's figures: what concurrent.json's ratios are made of."""

from __future__ import annotations

from typing import Any

from bench.concurrent_report import figures, pct, summarize


def op(kind: str, start: float, end: float, error: str | None = None) -> dict[str, Any]:
    return {"kind": kind, "start": start, "end": end, "out": None, "error": error}


def test_percentiles_are_nearest_rank() -> None:
    assert pct([], 0.5) is None
    assert pct([3.0], 0.95) == 3.0
    assert pct([4.0, 1.0, 3.0, 2.0], 0.5) == 2.0
    assert pct([float(i) for i in range(1, 21)], 0.95) == 19.0


def test_wall_spans_first_start_to_last_end_and_failures_are_counted_apart() -> None:
    f = figures([op("launch", 10, 14), op("snapshot", 11, 12),
                 op("launch", 12, 30, error="failed: boom")])
    assert f["wall_s"] == 20  # the failed one still held the phase open
    assert sorted(f["latencies_s"]) == [1, 4] and f["failed"] == 1
    assert f["errors"] == ["failed: boom"]
    assert f["p50_by_kind_s"] == {"launch": 4, "snapshot": 1}


def test_each_n_has_its_ratio_of_walls_per_phase() -> None:
    def side(scale: float) -> dict[str, Any]:
        phases = {p: [op(p, 0, 10 * scale), op(p, 1, 5 * scale)]
                  for p in ("launch", "snapshot", "mixed")}
        return {"phases": phases, "loadavg_before": (1.0, 1.0, 1.0),
                "loadavg_after": (2.0, 1.0, 1.0), "side_s": 30.0}

    entry = summarize(5, {"vmflow": side(1.1), "direct": side(1.0)})
    assert entry["n"] == 5 and round(entry["ratio"], 6) == 1.1 and entry["meets_target"]
    assert round(entry["mixed_ratio"], 6) == 1.1
    slow = summarize(5, {"vmflow": side(1.3), "direct": side(1.0)})
    assert not slow["meets_target"]

"""The snapshot benchmark's analysis: the freeze window out of the guest's ticks, the
tables printed against the targets and the plot (bench/snapshot.py measures; this
only reads what it measured)."""

from __future__ import annotations

import os
import statistics
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FREEZE_TARGET = 0.2  # s, the longest stall the guest may see
RATIO_TARGET = 1.5  # snapshot / convert
LEGEND = """\
freeze: the gap of the guest's /root ticker around vmflow's own freeze (its time from
  the copy step's result); worst round per size
longest gap: of any kind during the operation, with how long the /run (tmpfs) ticker
  stopped meanwhile (stall; as long as the gap: the whole guest stalled)
at s: from the start of the host copy step; host frz: vmflow's own freeze-to-thaw
snapshot s: the operation's start to finish; convert s: qemu-img convert of the same
  disk (the target's baseline; its output is not flushed: cache=unsafe by default);
  -t none s: the same with O_DIRECT output, as Nova extracts snapshots and as vmflow
  writes its copy (on disk when the step ends); for reference
medians per size; load: 1 min load average"""
# where each ticker writes: the root fs is frozen by the snapshot; the agent never
# freezes a tmpfs, so a gap there means the whole guest stalled, not its file system
TICKS = {"disk": "/root/ticks", "tmpfs": "/run/ticks"}
CLOCK_SLACK_S = 0.1  # how far guest uptime mapped to the host clock may be off
TIMELINE_S = 3.0  # the ticks kept (and plotted) either side of the freeze


Gap = tuple[float, float]  # two successive ticks, guest uptime


def gaps(ticks: list[float]) -> list[Gap]:
    return list(zip(ticks, ticks[1:], strict=False))


def freeze_window(ticks: dict[str, list[float]], clock: tuple[Gap, Gap],
                  span: tuple[float, float], frozen_mid: float | None) -> dict[str, Any]:
    """Gaps between the /root ticker's ticks that overlap `span` (host wall time),
    measured on the guest's clock. The freeze window is the longest gap around
    `frozen_mid` (the middle of vmflow's own freeze, from the copy step's result, on
    the host's clock); without it, the longest
    gap. The longest gap of any kind is reported beside it with how long the tmpfs
    ticker stopped meanwhile: as long means the whole guest stalled."""
    (u0, off0), (u1, off1) = clock  # (guest uptime, host time - uptime), before and after

    def host(u: float) -> float:  # guest uptime → host wall time, drift interpolated
        return u + off0 + (off1 - off0) * (u - u0) / ((u1 - u0) or 1)

    def overlaps(g: Gap, lo: float, hi: float) -> bool:
        return host(g[1]) > lo and host(g[0]) < hi

    disk, tmpfs = gaps(ticks["disk"]), gaps(ticks["tmpfs"])

    def stalled(g: Gap) -> float:  # the tmpfs ticker's longest gap overlapping g
        return max((y - x for x, y in tmpfs if overlaps((x, y), host(g[0]), host(g[1]))),
                   default=0.0)

    inside = sorted((g for g in disk if overlaps(g, *span)), key=lambda g: g[0] - g[1])
    if not inside:
        raise RuntimeError("no ticks during the snapshot: the ticker did not run")
    longest = inside[0]
    freeze = longest if frozen_mid is None else next(
        (g for g in inside
         if overlaps(g, frozen_mid - CLOCK_SLACK_S, frozen_mid + CLOCK_SLACK_S)),
        longest)
    return {
        "freeze_s": freeze[1] - freeze[0], "freeze_at": host(freeze[0]),
        "freeze_located": frozen_mid is not None, "freeze_guest_stalled_s": stalled(freeze),
        "longest_gap_s": longest[1] - longest[0], "longest_gap_at": host(longest[0]),
        "longest_gap_guest_stalled_s": stalled(longest),
        "ticks": len(ticks["disk"]), "tick_median_s": statistics.median(b - a for a, b in disk),
        "outside_max_s": max((b - a for a, b in disk if not overlaps((a, b), *span)),
                             default=0.0),
        "timeline": {name: [[round(host(b) - host(freeze[0]), 3), round(b - a, 3)]
                            for a, b in gaps(tt) if abs(host(b) - host(freeze[0])) <= TIMELINE_S]
                     for name, tt in ticks.items()},  # around the freeze
    }



def report(sizes: list[dict[str, Any]], virt_type: str) -> dict[str, Any]:
    med = statistics.median
    for sz in sizes:
        snaps = [r["snapshot"] for r in sz["rounds"]]
        sz["freeze_window_s"] = max(x["freeze_s"] for x in snaps)
        sz["longest_gap_s"] = max(x["longest_gap_s"] for x in snaps)
        sz["median_snapshot_s"] = med(x["seconds"] for x in snaps)
        sz["median_convert_s"] = med(r["convert_s"] for r in sz["rounds"])
        sz["ratio"] = sz["median_snapshot_s"] / sz["median_convert_s"]
        sz["median_convert_direct_s"] = med(r["convert_direct_s"] for r in sz["rounds"])
        sz["ratio_direct"] = sz["median_snapshot_s"] / sz["median_convert_direct_s"]
        sz["meets_freeze"] = sz["freeze_window_s"] <= FREEZE_TARGET
        sz["meets_ratio"] = sz["ratio"] <= RATIO_TARGET
    print(f"\n{'':12} {'freeze':^14} {'longest gap':^20}")
    print(f"{'size':>6} {'round':>5} {'s':>7} {'at s':>6} {'s':>7} {'at s':>6} {'stall':>6}"
          f" {'host frz':>8} {'snapshot s':>11} {'copy s':>7} {'upload s':>9}"
          f" {'convert s':>10} {'ratio':>6} {'load':>5}  consistency")
    for sz in sizes:
        for i, r in enumerate(sz["rounds"], 1):
            x = r["snapshot"]
            print(f"{sz['size_gib']:>5g}G {i:>5} {x['freeze_s']:>7.3f}"
                  f" {x['freeze_from_copy_start_s'] or 0:>6.1f} {x['longest_gap_s']:>7.3f}"
                  f" {x['longest_gap_from_copy_start_s'] or 0:>6.1f}"
                  f" {x['longest_gap_guest_stalled_s']:>6.3f} {x['vmflow_frozen_s'] or 0:>8.3f}"
                  f" {x['seconds']:>11.2f} {x['copy_s'] or 0:>7.2f} {x['upload_s'] or 0:>9.2f}"
                  f" {r['convert_s']:>10.2f} {x['seconds'] / r['convert_s']:>6.2f}"
                  f" {r['loadavg_1m']:>5.1f}  {x['consistency']}")
    print(f"\n{'size':>6} {'data GiB':>9} {'freeze s':>9} {'longest gap s':>14}"
          f" {'snapshot s':>11} {'convert s':>10} {'ratio':>6} {'-t none s':>10} {'ratio':>6}"
          f"  verdict (freeze ≤ {FREEZE_TARGET} s, snapshot ≤ {RATIO_TARGET}×)")
    for sz in sizes:
        verdict = ", ".join([
            "freeze " + ("ok" if sz["meets_freeze"] else "MISSES"),
            "ratio " + ("ok" if sz["meets_ratio"] else "MISSES")])
        print(f"{sz['size_gib']:>5g}G {sz['data_gib']:>9.2f} {sz['freeze_window_s']:>9.3f}"
              f" {sz['longest_gap_s']:>14.3f}"
              f" {sz['median_snapshot_s']:>11.2f} {sz['median_convert_s']:>10.2f}"
              f" {sz['ratio']:>6.2f} {sz['median_convert_direct_s']:>10.2f}"
              f" {sz['ratio_direct']:>6.2f}  {verdict}")
    ok = all(sz["meets_freeze"] and sz["meets_ratio"] for sz in sizes)
    print(f"\n{'meets' if ok else 'misses'} the targets ({virt_type}; {os.cpu_count()} CPUs)")
    print(LEGEND)
    return {"date": datetime.now(UTC).isoformat(timespec="seconds"), "virt_type": virt_type,
            "cpus": os.cpu_count(), "freeze_target_s": FREEZE_TARGET,
            "ratio_target": RATIO_TARGET, "meets_targets": ok, "sizes": sizes}


def plot(result: dict[str, Any], path: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot")
        return
    sizes = result["sizes"]
    fig, axes = plt.subplots(1, len(sizes) + 1, figsize=(4 * len(sizes) + 5, 4),
                             gridspec_kw={"width_ratios": [3] * len(sizes) + [3]})
    right = axes[-1]
    for ax, sz in zip(axes, sizes, strict=False):  # each size's worst round
        x = max((r["snapshot"] for r in sz["rounds"]), key=lambda x: x["freeze_s"])
        for name, style in (("disk", "-"), ("tmpfs", ":")):
            pts = x["timeline"][name]
            ax.step([p[0] for p in pts], [p[1] * 1000 for p in pts], style, where="pre",
                    label=f"ticker on {TICKS[name]}")
        ax.axhline(FREEZE_TARGET * 1000, color="red", ls="--", lw=0.8, label="target")
        ax.set(xlabel="s from the freeze (host clock)", ylim=(0, None),
               ylabel="gap between guest ticks (ms)",
               title=f"{sz['size_gib']:g} GiB: freeze {x['freeze_s']:.3f} s")
        ax.legend(fontsize=8)
    xs = range(len(sizes))
    copy = [statistics.median(r["snapshot"]["copy_s"] or 0 for r in sz["rounds"])
            for sz in sizes]
    upload = [statistics.median(r["snapshot"]["upload_s"] or 0 for r in sz["rounds"])
              for sz in sizes]
    rest = [sz["median_snapshot_s"] - c - u for sz, c, u in zip(sizes, copy, upload, strict=True)]
    w = 0.38
    right.bar([i - w / 2 for i in xs], copy, w, label="snapshot: host copy")
    right.bar([i - w / 2 for i in xs], upload, w, bottom=copy, label="snapshot: upload")
    right.bar([i - w / 2 for i in xs], rest, w, bottom=[c + u for c, u in zip(copy, upload,
                                                                              strict=True)],
              label="snapshot: the rest")
    right.bar([i + w / 2 for i in xs], [sz["median_convert_s"] for sz in sizes], w,
              label="qemu-img convert", color="grey")
    for i, sz in enumerate(sizes):
        right.annotate(f"{sz['ratio']:.2f}×", (i, sz["median_snapshot_s"]), ha="center",
                       va="bottom", fontsize=9)
    right.set(xticks=list(xs), xticklabels=[f"{sz['size_gib']:g} GiB" for sz in sizes],
              ylabel="s (median)", title=f"snapshot vs convert (target ≤ {RATIO_TARGET}×, "
                                         f"{result['virt_type']})")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")

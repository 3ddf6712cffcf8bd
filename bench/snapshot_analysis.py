"""The snapshot benchmark's analysis: the freeze window and the guest's stalls out of
its ticks, the tables printed against the targets and the plot (bench/snapshot.py
measures; this only reads what it measured)."""

from __future__ import annotations

import os
import statistics
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.plotting import pyplot

FREEZE_TARGET = 0.2  # s, the freeze as the guest sees it, in every round
STALL_TARGET = 0.2  # s, the longest the whole guest may stop, in every round
NOVA_TARGET = 1.0  # snapshot / Nova's pipeline (convert -t none, then hash and store)
BARE_TARGET = 1.2  # snapshot / bare convert -t none (the physical floor)
LEGEND = """\
freeze: the gap of the guest's /root ticker around vmflow's own freeze (its time from
  the copy step's result); host frz: vmflow's own freeze-to-thaw
stall: the longest gap of the /run (tmpfs) ticker during the operation: the whole
  guest stopped (the agent never freezes a tmpfs)
at s: from the start of the host copy step; dirty: the host's Dirty + Writeback MiB
  just before the snapshot
snapshot s: the operation's start to finish; nova s: qemu-img convert -t none of the
  same disk, then the output read again, sha256'd and written (flushed) into a store
  directory, as Nova and Glance do; bare s: the convert -t none alone
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
    stall = max((g for g in tmpfs if overlaps(g, *span)), key=lambda g: g[1] - g[0],
                default=None)
    if stall is None:
        raise RuntimeError("no tmpfs ticks during the snapshot: the ticker did not run")
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
        "stall_s": stall[1] - stall[0], "stall_at": host(stall[0]),
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
        sz["freeze_s"] = [x["freeze_s"] for x in snaps]  # every round's, in order
        sz["stall_s"] = [x["stall_s"] for x in snaps]
        sz["freeze_window_s"] = max(sz["freeze_s"])
        sz["longest_stall_s"] = max(sz["stall_s"])
        sz["median_snapshot_s"] = med(x["seconds"] for x in snaps)
        sz["median_nova_pipeline_s"] = med(r["nova_pipeline_s"] for r in sz["rounds"])
        sz["median_bare_convert_s"] = med(r["bare_convert_s"] for r in sz["rounds"])
        sz["nova_pipeline_ratio"] = sz["median_snapshot_s"] / sz["median_nova_pipeline_s"]
        sz["bare_convert_ratio"] = sz["median_snapshot_s"] / sz["median_bare_convert_s"]
        sz["meets_freeze"] = sz["freeze_window_s"] <= FREEZE_TARGET
        sz["meets_stall"] = sz["longest_stall_s"] <= STALL_TARGET
        sz["meets_nova"] = sz["nova_pipeline_ratio"] <= NOVA_TARGET
        sz["meets_bare"] = sz["bare_convert_ratio"] <= BARE_TARGET
    print(f"\n{'':12} {'freeze':^14} {'stall':^14}")
    print(f"{'size':>6} {'round':>5} {'s':>7} {'at s':>6} {'s':>7} {'at s':>6}"
          f" {'host frz':>8} {'dirty':>6} {'snapshot s':>11} {'copy s':>7} {'upload s':>9}"
          f" {'nova s':>7} {'bare s':>7} {'load':>5}  consistency")
    for sz in sizes:
        for i, r in enumerate(sz["rounds"], 1):
            x = r["snapshot"]
            print(f"{sz['size_gib']:>5g}G {i:>5} {x['freeze_s']:>7.3f}"
                  f" {x['freeze_from_copy_start_s'] or 0:>6.1f} {x['stall_s']:>7.3f}"
                  f" {x['stall_from_copy_start_s'] or 0:>6.1f}"
                  f" {x['vmflow_frozen_s'] or 0:>8.3f} {x['host_dirty_mib']:>6.0f}"
                  f" {x['seconds']:>11.2f} {x['copy_s'] or 0:>7.2f} {x['upload_s'] or 0:>9.2f}"
                  f" {r['nova_pipeline_s']:>7.2f} {r['bare_convert_s']:>7.2f}"
                  f" {r['loadavg_1m']:>5.1f}  {x['consistency']}")
    print(f"\n{'size':>6} {'data GiB':>9} {'freeze s':>9} {'stall s':>8} {'snapshot s':>11}"
          f" {'nova s':>7} {'ratio':>6} {'bare s':>7} {'ratio':>6}  verdict (freeze and"
          f" stall ≤ {FREEZE_TARGET} s every round, ≤ {NOVA_TARGET}× Nova, ≤ {BARE_TARGET}× bare)")
    for sz in sizes:
        verdict = ", ".join(f"{what} " + ("ok" if sz[f"meets_{what}"] else "MISSES")
                            for what in ("freeze", "stall", "nova", "bare"))
        print(f"{sz['size_gib']:>5g}G {sz['data_gib']:>9.2f} {sz['freeze_window_s']:>9.3f}"
              f" {sz['longest_stall_s']:>8.3f} {sz['median_snapshot_s']:>11.2f}"
              f" {sz['median_nova_pipeline_s']:>7.2f} {sz['nova_pipeline_ratio']:>6.2f}"
              f" {sz['median_bare_convert_s']:>7.2f} {sz['bare_convert_ratio']:>6.2f}"
              f"  {verdict}")
    ok = all(sz[f"meets_{what}"] for sz in sizes for what in ("freeze", "stall", "nova", "bare"))
    print(f"\n{'meets' if ok else 'misses'} the targets ({virt_type}; {os.cpu_count()} CPUs)")
    print(LEGEND)
    return {"date": datetime.now(UTC).isoformat(timespec="seconds"), "virt_type": virt_type,
            "cpus": os.cpu_count(), "freeze_target_s": FREEZE_TARGET,
            "stall_target_s": STALL_TARGET, "nova_pipeline_target": NOVA_TARGET,
            "bare_convert_target": BARE_TARGET, "meets_targets": ok, "sizes": sizes}


def plot(result: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    if plt is None:
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
    w = 0.27
    right.bar([i - w for i in xs], copy, w, label="snapshot: host copy")
    right.bar([i - w for i in xs], upload, w, bottom=copy, label="snapshot: upload")
    right.bar([i - w for i in xs], rest, w, bottom=[c + u for c, u in zip(copy, upload,
                                                                          strict=True)],
              label="snapshot: the rest")
    right.bar(list(xs), [sz["median_nova_pipeline_s"] for sz in sizes], w,
              label="Nova: convert -t none + hash + store", color="grey")
    right.bar([i + w for i in xs], [sz["median_bare_convert_s"] for sz in sizes], w,
              label="bare convert -t none", color="lightgrey")
    for i, sz in enumerate(sizes):
        right.annotate(f"{sz['nova_pipeline_ratio']:.2f}× Nova\n"
                       f"{sz['bare_convert_ratio']:.2f}× bare",
                       (i - w, sz["median_snapshot_s"]), ha="center", va="bottom", fontsize=8)
    right.set(xticks=list(xs), xticklabels=[f"{sz['size_gib']:g} GiB" for sz in sizes],
              ylabel="s (median)", title=f"snapshot vs Nova (≤ {NOVA_TARGET}×) and bare"
                                         f" convert (≤ {BARE_TARGET}×), {result['virt_type']}")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")

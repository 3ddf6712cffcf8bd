"""The migration benchmark's analysis: the guest's write stall out of its ticks, the
table printed against the targets and the plot (bench/migrate.py measures; this only
reads what it measured)."""

from __future__ import annotations

import os
import statistics
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.plotting import pyplot

RATIO_TARGET = 1.15  # median(vmflow live) / median(direct migrateToURI3)
STALL_TARGET = 0.2  # s, the longest the guest's writes may stop
LEGEND = """\
live s: vmflow's POST os-migrateLive until the polling client saw the operation end;
  direct: the bench's own destination prepare (vmflow's prepare_live_migration) +
  migrateToURI3 (same flags, relocated XML, max downtime) + the source's files removed
step s: the source's migration alone (vmflow's host.live_migrate / the direct call)
stall s: the longest gap of the guest's /root ticker (on its own clock) that overlaps the
  move's span (POST to the end seen; direct: prepare to files removed), plus how long its
  clock stood still across the move (a paused guest's clock stops: QEMU's virtual clock
  is migrated, so the pause never shows as a gap on the guest's clock); an upper bound
  of the write stall as the world saw it; idle gap: the longest gap outside the move
  (the guest's own stutter under TCG); libvirt downtime: the job's own figure
a round is a pair of moves, there and back; per round the worse of the two stalls"""


def stall(ticks: dict[str, list[float]], off0: float, off1: float,
          span: tuple[float, float]) -> dict[str, Any]:
    """`off` is host wall time minus guest uptime, before and after the move; `span`
    the move's start and end on the host's clock. A tick before the pause is at
    uptime + off0 on the host's clock, one after it at uptime + off1: a gap counts
    when it may overlap the span (the earlier offset for its start, the later for its
    end). The gaps outside it are the guest's own stutter, the baseline."""
    shift = off1 - off0
    lo, hi = span

    def split(ts: list[float]) -> tuple[list[float], list[float]]:
        inside: list[float] = []
        outside: list[float] = []
        for a, b in zip(ts, ts[1:], strict=False):
            (inside if b + max(off0, off1) > lo and a + min(off0, off1) < hi
             else outside).append(b - a)
        return inside, outside

    disk, idle = split(ticks["disk"])
    tmpfs, _ = split(ticks["tmpfs"])
    guest_gap = max(disk, default=0.0)
    return {"stall_s": guest_gap + max(shift, 0.0), "guest_gap_s": guest_gap,
            "tmpfs_gap_s": max(tmpfs, default=0.0), "clock_shift_s": shift,
            "idle_gap_s": max(idle, default=0.0),
            "tick_s": statistics.median(disk + idle) if disk + idle else None,
            "ticks": len(ticks["disk"])}


def p95(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=20, method="inclusive")[-1] if len(xs) > 1 else xs[0]


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    secs = [r["seconds"] for r in rows]
    return {"rounds": rows, "n": len(rows), "median_s": statistics.median(secs),
            "p95_s": p95(secs)}


def per_round_stall(legs: list[dict[str, Any]]) -> list[float]:
    rounds = sorted({leg["round"] for leg in legs})
    return [max(leg["stall_s"] for leg in legs if leg["round"] == n) for n in rounds]


def report(live: dict[str, list[dict[str, Any]]], cold: list[dict[str, Any]] | None,
           shelve: list[dict[str, Any]], virt_type: str) -> dict[str, Any]:
    med = statistics.median
    vm, direct = live["vmflow"], live["direct"]
    print(f"\n{'leg':>4} {'round':>5} {'side':>6} {'live s':>7} {'step s':>7} {'stall s':>8}"
          f" {'guest gap':>9} {'clock stood':>11} {'idle gap':>8} {'downtime ms':>11}"
          f" {'load':>5}")
    for i, leg in enumerate(sorted(vm + direct, key=lambda x: (x["round"], x["started"])), 1):
        print(f"{i:>4} {leg['round']:>5} {leg['side']:>6} {leg['seconds']:>7.2f}"
              f" {leg['migrate_step_s'] or 0:>7.2f} {leg['stall_s']:>8.3f}"
              f" {leg['guest_gap_s']:>9.3f} {leg['clock_shift_s']:>11.3f}"
              f" {leg['idle_gap_s']:>8.3f}"
              f" {leg['downtime_ms'] if leg['downtime_ms'] is not None else '-':>11}"
              f" {leg['loadavg_1m']:>5.2f}")
    v, d = summary(vm), summary(direct)
    ratio = v["median_s"] / d["median_s"]
    v_stall, d_stall = per_round_stall(vm), per_round_stall(direct)
    print(LEGEND)
    print(f"\nlive migration ({virt_type}), {len(vm)} moves each:")
    print(f"  vmflow  median {v['median_s']:.2f} s  p95 {v['p95_s']:.2f} s  "
          f"step median {med(x['migrate_step_s'] for x in vm):.2f} s")
    print(f"  direct  median {d['median_s']:.2f} s  p95 {d['p95_s']:.2f} s  "
          f"step median {med(x['migrate_step_s'] for x in direct):.2f} s")
    print(f"  ratio   {ratio:.2f}×  ({'meets' if ratio <= RATIO_TARGET else 'misses'} the"
          f" ≤ {RATIO_TARGET}× target)")
    for name, st in (("vmflow", v_stall), ("direct", d_stall)):
        worst = max(st)
        print(f"  stall {name}: worst per round " + ", ".join(f"{x:.3f}" for x in st)
              + f" s; max {worst:.3f} s ({'meets' if worst <= STALL_TARGET else 'misses'}"
              f" the ≤ {STALL_TARGET} s target)")
    kinds: dict[str, Any] = {
        "live_vmflow": {**v, "max_stall_per_round_s": v_stall},
        "live_direct": {**d, "max_stall_per_round_s": d_stall}}
    if cold is not None:
        kinds["cold_migrate"] = summary(cold)
    kinds["shelve_unshelve"] = summary(shelve)
    print()
    for name in ("cold_migrate", "shelve_unshelve"):
        if name in kinds:
            k = kinds[name]
            print(f"  {name:<16} median {k['median_s']:.2f} s  p95 {k['p95_s']:.2f} s"
                  f"  ({k['n']} rounds)")
        else:
            print(f"  {name:<16} not measured: no cold migration on this branch")
    return {"date": datetime.now(UTC).isoformat(timespec="seconds"), "virt_type": virt_type,
            "cpus": os.cpu_count(), "ratio_target": RATIO_TARGET, "stall_target_s": STALL_TARGET,
            "live_ratio": ratio, "meets_ratio_target": ratio <= RATIO_TARGET,
            "live_max_stall_s": {"vmflow": max(v_stall), "direct": max(d_stall)},
            "kinds": kinds}


def plot(result: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    if plt is None:
        return
    kinds = result["kinds"]
    fig, (dur, st) = plt.subplots(1, 2, figsize=(11, 4))
    labels = {"live_vmflow": "live, vmflow (API)", "live_direct": "live, direct libvirt",
              "cold_migrate": "cold migrate + confirm", "shelve_unshelve": "shelve + unshelve"}
    for key, label in labels.items():
        if key not in kinds:
            continue
        rows = kinds[key]["rounds"]
        line, = dur.plot(range(1, len(rows) + 1), [r["seconds"] for r in rows], "o-",
                         label=label, ms=4)
        dur.axhline(kinds[key]["median_s"], color=line.get_color(), ls="--", lw=0.8)
    dur.set(xlabel="move (live: 2 per round, there and back)", ylabel="seconds",
            ylim=(0, None), title=f"live median ratio {result['live_ratio']:.2f}× "
                                  f"(target ≤ {result['ratio_target']}×, {result['virt_type']})")
    dur.legend(fontsize=8)
    for key in ("live_vmflow", "live_direct"):
        rows = kinds[key]["rounds"]
        line, = st.plot(range(1, len(rows) + 1), [r["stall_s"] for r in rows], "o-", ms=4,
                        label=f"{labels[key]}: stall")
        st.plot(range(1, len(rows) + 1), [r["clock_shift_s"] for r in rows], "x:", ms=4,
                color=line.get_color(), label=f"{labels[key]}: clock stood")
    st.axhline(result["stall_target_s"], color="red", lw=0.8, label="target")
    st.set(xlabel="live move", ylabel="seconds", ylim=(0, None),
           title="guest's write stall per move")
    st.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")

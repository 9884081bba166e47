"""The report: from a run's results JSON to `docs/benchmarks.md` and its PNG charts.

For every workload and metric, a table of the systems with the median of the repetitions, their
spread (min-max) and how many there were; each longrunning figure as a factor against the best
peer and against the ceiling, always oriented so that > 1 means longrunning is better; then the
goals of issue 7, each met or missed. Hand-written findings (profiles, fixes) live in
`bench/findings.md` and are copied in verbatim, since this file is regenerated.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.model import Result, role_of

FINDINGS = Path(__file__).resolve().parent / "findings.md"
CHARTED_METRICS = {
    "ops_per_second",
    "requests_per_second",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "peak_rss_mb",
}
ROLE_COLOURS = {"longrunning": "#1f77b4", "peer": "#8c8c8c", "ceiling": "#2ca02c"}


# ---------------------------------------------------------------------------------------------
# Looking results up


def _workload_key(workload: str) -> tuple[int, str]:
    match = re.match(r"W(\d+)(.*)", workload)
    return (int(match.group(1)), match.group(2)) if match else (99, workload)


def _ok(result: Result) -> bool:
    return result.status == "ok" and bool(result.samples) and _finite(result.median)


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _median(result: Result) -> float:
    value = result.median
    assert value is not None
    return value


def better_factor(ours: float, theirs: float, higher_is_better: bool) -> float | None:
    """How many times better `ours` is than `theirs` (> 1: better), or None when undefined."""
    if ours <= 0 or theirs <= 0 or not math.isfinite(ours) or not math.isfinite(theirs):
        return None
    return ours / theirs if higher_is_better else theirs / ours


def _truthful(result: Result, results: list[Result]) -> bool:
    """False when the system said so (`extra.truthful`) or when its work took a step after it
    reported the terminal state, in any repetition of the same workload."""
    if result.extra.get("truthful", True) is False:
        return False
    return not any(
        r.system == result.system
        and r.workload == result.workload
        and r.metric == "steps_after_terminal"
        and any(sample > 0 for sample in r.samples)
        for r in results
    )


COMPARED_AS = {"W1.single": "W1"}
"""Variants of a workload that only longrunning runs, compared with the peers' own run of it:
W1.single starts one operation per request, as the peers do, where W1 uses batch starts."""


def best_peer(results: Iterable[Result], workload: str, metric: str) -> Result | None:
    """The best ok peer result for (workload, metric); for W3 only peers whose terminal state is
    truthful count."""
    everything = list(results)
    workload = COMPARED_AS.get(workload, workload)
    candidates = [
        r
        for r in everything
        if r.workload == workload
        and r.metric == metric
        and r.role == "peer"
        and _ok(r)
        and (not workload.startswith("W3") or _truthful(r, everything))
    ]
    if not candidates:
        return None
    pick = max if candidates[0].higher_is_better else min
    return pick(candidates, key=_median)


def ceilings_for(
    results: Iterable[Result], system: str, workload: str, metric: str
) -> list[Result]:
    """The ok ceilings of (workload, metric) that apply to `system`: a store's ceiling applies to
    longrunning on that store; any other ceiling to every longrunning system."""
    found = []
    for r in results:
        if r.role != "ceiling" or r.workload != workload or r.metric != metric or not _ok(r):
            continue
        for store in ("sqlite", "postgres"):
            if store in r.system and store not in system:
                break
        else:
            found.append(r)
    return found


def find(results: Iterable[Result], workload: str, system: str, metric: str) -> Result | None:
    for r in results:
        if r.workload == workload and r.system == system and r.metric == metric and _ok(r):
            return r
    return None


# ---------------------------------------------------------------------------------------------
# Formatting


def fmt(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def fmt_factor(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _short(system: str) -> str:
    return system.removeprefix("ceiling-")


# ---------------------------------------------------------------------------------------------
# Goals


@dataclass(frozen=True)
class Verdict:
    goal: str
    measured: str
    met: bool | None
    """None: not measured."""


def _ratio_goal(
    results: list[Result], goal: str, system: str, workload: str, metric: str, factor: float
) -> Verdict:
    ours, peer = find(results, workload, system, metric), best_peer(results, workload, metric)
    if ours is None or peer is None:
        missing = "no longrunning result" if ours is None else "no peer measured"
        return Verdict(goal, f"not measured ({missing})", None)
    got = better_factor(_median(ours), _median(peer), ours.higher_is_better)
    measured = (
        f"{fmt(_median(ours))} vs {peer.system} {fmt(_median(peer))} {ours.unit}: {fmt_factor(got)}"
    )
    return Verdict(goal, measured, got is not None and got >= factor)


def _w3_goals(results: list[Result], system: str) -> list[Verdict]:
    verdicts = []
    cancelled = find(results, "W3", system, "cancelled_fraction")
    late = find(results, "W3", system, "steps_after_terminal")
    stuck = find(results, "W3", system, "stuck")
    if cancelled is None or late is None or stuck is None:
        verdicts.append(Verdict(f"W3 {system}: 100 % cancelled, none stuck", "not measured", None))
        verdicts.append(Verdict(f"W3 {system}: zero steps after terminal", "not measured", None))
    else:
        verdicts.append(
            Verdict(
                f"W3 {system}: 100 % cancelled, none stuck",
                f"cancelled {min(cancelled.samples):.0%} (worst repetition), "
                f"stuck {max(stuck.samples):.0f}",
                min(cancelled.samples) == 1.0 and max(stuck.samples) == 0,
            )
        )
        verdicts.append(
            Verdict(
                f"W3 {system}: zero handler steps after the reported terminal state",
                f"{max(late.samples):.0f} (worst repetition)",
                max(late.samples) == 0,
            )
        )
    verdicts.append(
        _ratio_goal(
            results, f"W3 {system}: p99 ≤ 1/2 best truthful peer's", system, "W3", "p99_ms", 2.0
        )
    )
    return verdicts


def _w4_goals(results: list[Result]) -> list[Verdict]:
    verdicts = []
    hello = [
        r
        for r in results
        if r.role == "ceiling"
        and r.workload.startswith("W4")
        and r.metric == "requests_per_second"
        and _ok(r)
    ]
    for face in ("native", "google-rest"):
        goal = f"W4 {face}: ≥ 60 % of the hello-world ceiling"
        ours = [
            r
            for r in results
            if r.workload == f"W4.{face}"
            and r.role == "longrunning"
            and r.metric == "requests_per_second"
            and _ok(r)
        ]
        if not ours or not hello:
            verdicts.append(Verdict(goal, "not measured", None))
            continue
        ceiling = max(hello, key=_median)
        for r in ours:
            share = _median(r) / _median(ceiling)
            verdicts.append(
                Verdict(
                    f"{goal} ({r.system})",
                    f"{fmt(_median(r))} vs {fmt(_median(ceiling))} requests/s: {share:.0%}",
                    share >= 0.6,
                )
            )
    return verdicts


def _w5_goals(results: list[Result]) -> list[Verdict]:
    ours = [
        r
        for r in results
        if r.workload.startswith("W5") and r.role == "longrunning" and r.metric == "p99_ms"
    ]
    ok = [r for r in ours if _ok(r)]
    if not ok:
        return [Verdict("W5: p99 ≤ 20 ms per page at 1,000,000 operations", "not measured", None)]
    return [
        Verdict(
            f"W5 {r.workload} {r.system}: p99 ≤ 20 ms per page",
            f"{fmt(_median(r))} ms",
            _median(r) <= 20,
        )
        for r in ok
    ]


def _w6_goals(results: list[Result]) -> list[Verdict]:
    verdicts = []
    one = find(results, "W6.workers1", "longrunning-postgres", "ops_per_second")
    two = find(results, "W6.workers2", "longrunning-postgres", "ops_per_second")
    goal = "W6: 2 workers ≥ 1.6× one (PostgreSQL)"
    if one is None or two is None:
        verdicts.append(Verdict(goal, "not measured", None))
    else:
        factor = _median(two) / _median(one)
        measured = f"{fmt(_median(two))} vs {fmt(_median(one))} ops/s: {factor:.2f}×"
        verdicts.append(Verdict(goal, measured, factor >= 1.6))
    rss = [
        r
        for r in results
        if r.workload.startswith("W6") and r.metric == "peak_rss_mb" and r.role == "longrunning"
    ]
    rss_ok = [r for r in rss if _ok(r)]
    if not rss_ok:
        verdicts.append(Verdict("W6: 10,000 running operations in ≤ 300 MB", "not measured", None))
    for r in rss_ok:
        verdicts.append(
            Verdict(
                f"W6: 10,000 running operations in ≤ 300 MB ({r.system})",
                f"{fmt(_median(r))} MB peak RSS",
                _median(r) <= 300,
            )
        )
    return verdicts


def goals(results: list[Result]) -> list[Verdict]:
    sqlite, postgres = "longrunning-sqlite", "longrunning-postgres"
    verdicts = [
        _ratio_goal(results, "W1 SQLite: ≥ 3× the best peer", sqlite, "W1", "ops_per_second", 3),
        _ratio_goal(
            results, "W1 PostgreSQL: ≥ 1.5× the best peer", postgres, "W1", "ops_per_second", 1.5
        ),
    ]
    for system in (sqlite, postgres):
        verdicts.append(
            _ratio_goal(results, f"W2 {system}: p99 ≤ 1/3 best peer's", system, "W2", "p99_ms", 3.0)
        )
    for system in (sqlite, postgres):
        verdicts += _w3_goals(results, system)
    across = find(results, "W3.across-nodes", postgres, "p99_ms")
    verdicts.append(
        Verdict(
            "W3 across nodes on PostgreSQL: p99 ≤ 25 ms",
            "not measured" if across is None else f"{fmt(_median(across))} ms",
            None if across is None else _median(across) <= 25,
        )
    )
    return [*verdicts, *_w4_goals(results), *_w5_goals(results), *_w6_goals(results)]


# ---------------------------------------------------------------------------------------------
# Charts


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()


def draw_chart(rows: list[Result], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = sorted((r for r in rows if _ok(r)), key=_row_order)
    first = ok[0]
    labels = [r.system for r in ok]
    medians = [_median(r) for r in ok]
    low = [m - min(r.samples) for r, m in zip(ok, medians, strict=True)]
    high = [max(r.samples) - m for r, m in zip(ok, medians, strict=True)]
    colours = [ROLE_COLOURS[r.role] for r in ok]
    figure, axes = plt.subplots(figsize=(7.5, 0.45 * len(ok) + 1.4), dpi=100)
    try:
        axes.barh(labels, medians, xerr=[low, high], color=colours, capsize=3)
        axes.invert_yaxis()
        direction = "higher" if first.higher_is_better else "lower"
        axes.set_title(
            f"{first.workload} {first.metric} ({first.unit}; {direction} is better)", fontsize=10
        )
        axes.set_xlabel(f"median of the repetitions, bars: min–max ({first.unit})")
        axes.tick_params(labelsize=8)
        figure.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path)
    finally:
        plt.close(figure)


# ---------------------------------------------------------------------------------------------
# The markdown


def _groups(results: list[Result]) -> dict[str, dict[str, list[Result]]]:
    by_workload: dict[str, dict[str, list[Result]]] = {}
    for r in sorted(results, key=lambda r: _workload_key(r.workload)):
        by_workload.setdefault(r.workload, {}).setdefault(r.metric or "(none)", []).append(r)
    return by_workload


def _row_order(r: Result) -> tuple[int, float]:
    rank = {"longrunning": 0, "ceiling": 1, "peer": 2}[role_of(r.system)]
    value = _median(r) if _ok(r) else math.inf
    return rank, -value if r.higher_is_better else value


def _table(rows: list[Result], all_results: list[Result]) -> list[str]:
    first = rows[0]
    peer = best_peer(all_results, first.workload, first.metric)
    lines = [
        "| system | role | median | spread (min–max) | n | vs best peer | vs ceiling | status |",
        "|---|---|---:|---:|---:|---:|---|---|",
    ]
    for r in sorted(rows, key=_row_order):
        median = r.median if _ok(r) else None
        spread = f"{fmt(min(r.samples))}–{fmt(max(r.samples))}" if _ok(r) else "–"
        versus_peer, versus_ceiling = "", ""
        if r.role == "longrunning" and median is not None:
            if peer is not None:
                versus_peer = fmt_factor(better_factor(median, _median(peer), r.higher_is_better))
            parts = [
                f"{fmt_factor(better_factor(median, _median(c), r.higher_is_better))} "
                f"{_short(c.system)}"
                for c in ceilings_for(all_results, r.system, r.workload, r.metric)
            ]
            versus_ceiling = ", ".join(parts)
        status = r.status if r.status == "ok" else f"**{r.status}**"
        lines.append(
            f"| {r.system} | {r.role} | {fmt(median)} | {spread} | {len(r.samples)} | "
            f"{versus_peer} | {versus_ceiling} | {status} |"
        )
    if peer is not None:
        which = "Best truthful peer" if first.workload.startswith("W3") else "Best peer"
        lines.append("")
        lines.append(f"{which}: {peer.system} ({fmt(_median(peer))} {first.unit}).")
    return lines


def _notes(rows: list[Result]) -> list[str]:
    seen: dict[str, list[str]] = {}
    for r in rows:
        if r.note:
            seen.setdefault(r.note, []).append(r.system)
    return [f"- {', '.join(systems)}: {_cell(note)}" for note, systems in seen.items()]


def _w3_details(rows: list[Result]) -> list[str]:
    lines = []
    for r in rows:
        reps = r.extra.get("repetitions")
        if r.metric != "p99_ms" or not isinstance(reps, list):
            continue
        keys = ("steps_after_end_time", "steps_after_cancel_request", "exits_after_terminal")
        for i, rep in enumerate(reps):
            if not isinstance(rep, dict):
                continue
            facts = ", ".join(f"{k} {rep[k]}" for k in keys if k in rep)
            outcomes = rep.get("outcomes", {})
            lines.append(f"- {r.system} repetition {i + 1}: outcomes {outcomes}; {facts}")
    return lines


def render(run: dict[str, Any], results: list[Result], charts: dict[tuple[str, str], str]) -> str:
    machine = run.get("machine", {})
    scale = run.get("scale", {})
    out = [
        "# Benchmarks",
        "",
        "Generated by `scripts/bench` (`python -m bench`) from "
        "`bench/results/latest.json`; do not edit by hand — findings go in `bench/findings.md`.",
        "See [bench/README.md](../bench/README.md) for what each workload does and how to rerun.",
        "",
        "Figures are medians of the repetitions, with their spread (min–max). **vs best peer** "
        "and **vs ceiling** are factors oriented so that **> 1 means longrunning is better** "
        "(throughput: ours / theirs; latency: theirs / ours). The machine is shared and noisy: "
        "read the ratios, measured side by side in one run, rather than any absolute figure.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
    ]
    facts = [
        ("date", machine.get("date")),
        ("CPUs", f"{machine.get('cpu_count')} × {machine.get('cpu_model')}"),
        ("memory", f"{machine.get('memory_gb')} GB"),
        ("load average at the end", machine.get("load_average")),
        ("Python", machine.get("python")),
        ("SQLite", machine.get("sqlite")),
        ("PostgreSQL", machine.get("postgres") or "not used"),
        ("platform", machine.get("platform")),
        ("commit", machine.get("git_commit")),
        ("run time", f"{run.get('seconds')} s"),
        (
            "scale",
            f"{'smoke' if scale.get('smoke') else 'full'}, "
            f"{scale.get('repetitions')} repetitions, W1 {scale.get('w1_operations')} operations, "
            f"W2 {scale.get('w2_round_trips')} round trips, W3 {scale.get('w3_cancels')} cancels",
        ),
    ]
    out += [f"| {name} | {_cell(str(value))} |" for name, value in facts]
    out += ["", "## Goals (issue 7)", "", "| goal | measured | met |", "|---|---|---|"]
    for v in goals(results):
        met = "not measured" if v.met is None else ("**yes**" if v.met else "**no**")
        out.append(f"| {_cell(v.goal)} | {_cell(v.measured)} | {met} |")
    for workload, metrics in _groups(results).items():
        out += ["", f"## {workload}"]
        for metric, rows in metrics.items():
            unit = rows[0].unit
            direction = "higher" if rows[0].higher_is_better else "lower"
            out += ["", f"### {workload} {metric} ({unit or 'n/a'}; {direction} is better)", ""]
            out += _table(rows, results)
            chart = charts.get((workload, metric))
            if chart:
                out += ["", f"![{workload} {metric}]({chart})"]
            notes = _notes(rows)
            if notes:
                out += ["", "Notes:", "", *notes]
            if workload == "W3":
                details = _w3_details(rows)
                if details:
                    out += ["", "Per repetition:", "", *details]
    if FINDINGS.exists():
        out += ["", "## Findings", "", FINDINGS.read_text().strip()]
    return "\n".join(out) + "\n"


def write(
    run: dict[str, Any],
    report_path: Path,
    *,
    draw: Callable[[list[Result], Path], None] = draw_chart,
) -> None:
    """Write the markdown to report_path and its charts to the folder named after it
    (docs/benchmarks.md -> docs/benchmarks/*.png), replacing the charts of an earlier run."""
    results = [Result.from_json(item) for item in run.get("results", [])]
    chart_dir = report_path.parent / report_path.stem
    chart_dir.mkdir(parents=True, exist_ok=True)
    for old in chart_dir.glob("*.png"):
        old.unlink()
    charts: dict[tuple[str, str], str] = {}
    for workload, metrics in _groups(results).items():
        for metric, rows in metrics.items():
            if metric not in CHARTED_METRICS or not any(_ok(r) for r in rows):
                continue
            name = f"{_slug(workload)}-{_slug(metric)}.png"
            draw(rows, chart_dir / name)
            charts[(workload, metric)] = f"{chart_dir.name}/{name}"
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(render(run, results, charts))

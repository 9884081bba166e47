"""The report's comparisons: the best peer, and for W3 only the peers whose cancel is truthful."""

from __future__ import annotations

from bench.model import Result
from bench.report import best_peer, better_factor


def w3(system: str, p99: float, late_steps: float) -> list[Result]:
    return [
        Result("W3", system, "p99_ms", "ms", False, [p99, p99 + 1, p99 + 2]),
        Result("W3", system, "steps_after_terminal", "steps", False, [0, late_steps, 0]),
    ]


def test_w3_compares_only_with_peers_that_never_step_after_the_terminal_state() -> None:
    results = [
        *w3("fast-liar", 2.0, 1),
        *w3("honest", 11.0, 0),
        *w3("longrunning-sqlite", 5.0, 0),
    ]
    best = best_peer(results, "W3", "p99_ms")
    assert best is not None and best.system == "honest"
    liar_only = w3("fast-liar", 2.0, 3)
    assert best_peer(liar_only, "W3", "p99_ms") is None


def test_w1_takes_the_best_peer_whatever_it_did() -> None:
    results = [
        Result("W1", "slow", "ops_per_second", "ops/s", True, [100, 110, 90]),
        Result("W1", "fast", "ops_per_second", "ops/s", True, [900, 1000, 950]),
        Result("W1", "ceiling-sqlite-wal-normal", "ops_per_second", "ops/s", True, [5000]),
        Result("W1", "broken", "ops_per_second", "ops/s", True, [], status="failed"),
    ]
    best = best_peer(results, "W1", "ops_per_second")
    assert best is not None and best.system == "fast"


def test_factors_read_better_above_one() -> None:
    assert better_factor(300, 100, higher_is_better=True) == 3
    assert better_factor(5, 10, higher_is_better=False) == 2
    assert better_factor(0, 10, higher_is_better=False) is None

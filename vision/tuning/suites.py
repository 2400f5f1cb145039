"""The gate's second test: the evaluation suites, run with each model as ``eval --model`` runs them.

AP on single frames does not show what a ticket needs: a model that finds the bicycle on most
frames but loses it for a second now and then opens its ticket late or twice. So each suite is
replayed with the candidate and with the current model through ``street-vision eval``'s own code
path, and per event type the candidate must keep its F1 (within ``f1_margin``) and must not take
longer to detect (mean time to detect, within ``detect_margin`` seconds).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vision.config import ConfigError
from vision.detect.card import ModelCard
from vision.evaluate.metrics import Metrics
from vision.evaluate.overrides import parse_overrides
from vision.evaluate.plots import table_png
from vision.evaluate.suite import load_suite, run_suite
from vision.tuning.errors import TuningError


def suite_events(card: ModelCard, suite: Path) -> dict[str, Metrics]:
    """Event scores per type of one suite, every video run with ``card`` (``eval --model``)."""
    try:
        result = run_suite(load_suite(suite, overrides=parse_overrides([], card.card_path)))
    except ConfigError as exc:
        raise TuningError(f"--suite {suite}: {'; '.join(exc.problems)}") from None
    broken = [f"{r.name}: {r.error}" for r in result.replays if r.error]
    if broken:
        raise TuningError(f"--suite {suite}: with {card.name}, {'; '.join(broken)}")
    return result.events


def compare_events(
    suite: str,
    candidate: dict[str, Metrics],
    current: dict[str, Metrics],
    f1_margin: float,
    detect_margin: float,
) -> list[dict[str, Any]]:
    """One row per event type: F1 and mean time to detect side by side, and whether it regressed.

    A score without a value (no incident, or none detected) counts as F1 0 and as no time to
    compare: losing every detection shows as the F1 drop."""
    rows = []
    for event_type in sorted(set(candidate) | set(current)):
        new, old = candidate.get(event_type, {}), current.get(event_type, {})
        f1_new, f1_old = new.get("f1"), old.get("f1")
        ttd_new, ttd_old = new.get("time_to_detect_mean"), old.get("time_to_detect_mean")
        f1_drop = f1_old is not None and (f1_new or 0.0) < f1_old - f1_margin
        slower = ttd_new is not None and ttd_old is not None and ttd_new > ttd_old + detect_margin
        rows.append(
            {
                "suite": suite,
                "event": event_type,
                "f1": {"current": f1_old, "candidate": f1_new},
                "time_to_detect": {"current": ttd_old, "candidate": ttd_new},
                "regressed": [k for k, bad in (("F1", f1_drop), ("time to detect", slower)) if bad],
            }
        )
    return rows


def suite_gate(
    candidate: ModelCard, current: ModelCard, suites: list[Path], f1_margin: float, detect_margin: float
) -> dict[str, Any]:
    """Both models on every suite; the rows and the event types that regressed."""
    rows = []
    for suite in suites:
        new, old = suite_events(candidate, suite), suite_events(current, suite)
        rows += compare_events(str(suite), new, old, f1_margin, detect_margin)
    regressed = [
        f"{r['event']} ({', '.join(r['regressed'])}, {Path(r['suite']).name})" for r in rows if r["regressed"]
    ]
    return {"f1_margin": f1_margin, "detect_margin": detect_margin, "rows": rows, "regressed": regressed}


def _cell(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(events: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the event comparison, for the Markdown report and its PNG."""
    header = [
        "suite",
        "event type",
        "F1 current",
        "F1 candidate",
        "detect s current",
        "detect s candidate",
        "regressed",
    ]
    rows = [
        [
            Path(r["suite"]).name,
            r["event"],
            _cell(r["f1"]["current"], 2),
            _cell(r["f1"]["candidate"], 2),
            _cell(r["time_to_detect"]["current"], 1),
            _cell(r["time_to_detect"]["candidate"], 1),
            ", ".join(r["regressed"]) or "no",
        ]
        for r in events["rows"]
    ]
    return header, rows


def events_png(events: dict[str, Any]) -> bytes:
    """The event comparison as an image (the evaluation report's table figure)."""
    return table_png("Event scores: current against candidate", *table(events))

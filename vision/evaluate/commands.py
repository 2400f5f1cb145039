"""``street-vision eval`` and ``street-vision scenario``: the evaluation's two commands.

The heavy modules load when a command runs, so the CLI starts fast for every other command.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vision.config import ConfigError


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register the evaluation commands on the CLI's subcommand parser."""
    p = sub.add_parser("eval", help="replay recorded videos with ground truth and score the events")
    p.add_argument("suite", type=Path, help="folder of *.truth.yaml files, or a suite YAML listing them")
    p.add_argument("--out", type=Path, default=Path("eval-report"), help="report folder")
    p.add_argument("--thresholds", type=Path, help="fail (exit 1) when a score is outside these limits")
    p.set_defaults(func=lambda args: eval_command(args.suite, args.out, args.thresholds))

    p = sub.add_parser("scenario", help="render a scenario clip from real pixels and write its ground truth")
    p.add_argument("spec", type=Path, help="scenario spec (YAML)")
    p.add_argument("--out", type=Path, help="clip path (default: beside the spec, named after it)")
    p.set_defaults(func=lambda args: scenario_command(args.spec, args.out))


def eval_command(suite: Path, out: Path, thresholds: Path | None = None) -> int:
    """Replay a suite, write the report, print the scores; 1 when a threshold fails or a video broke."""
    from vision.evaluate.report import events_table, write_report
    from vision.evaluate.suite import check_thresholds, load_suite, run_suite

    loaded = load_suite(suite, thresholds)
    result = run_suite(loaded)
    failures = check_thresholds(result, loaded.thresholds) if loaded.thresholds else None
    report = write_report(result, out, str(suite), failures)
    header, rows = events_table(result.events)
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    for row in [header, *rows]:
        print(
            "  ".join(
                cell.rjust(w) if c else cell.ljust(w)
                for c, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    if result.detection is not None:
        print(
            f"detection mAP@0.5: {result.detection['map50']:.3f}"
            if result.detection["map50"] is not None
            else "detection mAP@0.5: no boxes on the processed frames"
        )
    fps = result.frames / result.wall_seconds if result.wall_seconds else 0.0
    print(f"{result.frames} frames in {result.wall_seconds:.1f} s ({fps:.1f} frames/s); report: {report}")
    broken = [r for r in result.replays if r.error]
    for r in broken:
        print(f"error: {r.name}: {r.error}")
    for failure in failures or []:
        print(f"below threshold: {failure}")
    return 1 if failures or broken else 0


def scenario_command(spec: Path, out: Path | None = None) -> int:
    """Render a scenario clip and write its ground truth beside it."""
    from vision.evaluate.scenario import ScenarioError, generate

    try:
        clip, truth = generate(spec, out)
    except ScenarioError as exc:
        raise ConfigError([str(exc)]) from None
    print(f"wrote {clip} ({clip.stat().st_size} bytes) and {truth}")
    return 0

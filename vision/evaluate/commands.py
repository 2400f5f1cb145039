"""``street-vision eval`` and ``street-vision scenario``: the evaluation's two commands.

The heavy modules load when a command runs, so the CLI starts fast for every other command.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vision.config import ConfigError


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register the evaluation commands on the CLI's subcommand parser."""
    p = sub.add_parser(
        "eval",
        help="replay recorded videos with ground truth and score the events",
        usage="%(prog)s SUITE [--out DIR] [--thresholds FILE] [--model CARD] [--set KEY=VALUE ...]\n"
        "       %(prog)s compare A/results.json B/results.json [--out DIR]",
    )
    p.add_argument("suite", type=Path, help="folder of *.truth.yaml files, or a suite YAML listing them")
    p.add_argument("results", type=Path, nargs="*", help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, help="report folder (default: eval-report, or eval-compare)")
    p.add_argument("--thresholds", type=Path, help="fail (exit 1) when a score is outside these limits")
    p.add_argument("--model", type=Path, help="run every video with this model card instead of its own")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting of every ground-truth file, e.g. events.close_after=5 or "
        "camera.zones.*.rules.crowd.min_duration=3 (repeatable)",
    )
    p.set_defaults(func=_eval_or_compare)

    p = sub.add_parser("scenario", help="render a scenario clip from real pixels and write its ground truth")
    p.add_argument("spec", type=Path, help="scenario spec (YAML)")
    p.add_argument("--out", type=Path, help="clip path (default: beside the spec, named after it)")
    p.set_defaults(func=lambda args: scenario_command(args.spec, args.out))


def _eval_or_compare(args: argparse.Namespace) -> int:
    """``eval SUITE ...`` or ``eval compare A B``: one positional word tells them apart."""
    if str(args.suite) == "compare" and not args.suite.exists():
        if len(args.results) != 2 or args.thresholds or args.model or args.overrides:
            raise ConfigError(["eval compare: give exactly two results.json files (and --out), nothing else"])
        return compare_command(args.results[0], args.results[1], args.out or Path("eval-compare"))
    if args.results:
        raise ConfigError([f"eval: one suite at a time; unexpected: {' '.join(map(str, args.results))}"])
    return eval_command(
        args.suite, args.out or Path("eval-report"), args.thresholds, args.model, args.overrides
    )


def compare_command(a: Path, b: Path, out: Path) -> int:
    """Write the side-by-side report of two runs."""
    from vision.evaluate.compare import write_comparison

    print(f"comparison: {write_comparison(a, b, out)}")
    return 0


def eval_command(
    suite: Path,
    out: Path,
    thresholds: Path | None = None,
    model: Path | None = None,
    overrides: list[str] | None = None,
) -> int:
    """Replay a suite, write the report, print the scores; 1 when a threshold fails or a video broke."""
    from vision.evaluate.overrides import parse_overrides
    from vision.evaluate.report import events_table, write_report
    from vision.evaluate.suite import check_thresholds, load_suite, run_suite

    if model is not None and not model.is_file():
        raise ConfigError([f"--model: no such model card: {model}"])
    settings = parse_overrides(overrides or [], model)
    loaded = load_suite(suite, thresholds, settings)
    result = run_suite(loaded)
    failures = check_thresholds(result, loaded.thresholds) if loaded.thresholds else None
    report = write_report(result, out, str(suite), failures, [o.text for o in settings])
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
        per_class = ", ".join(f"{k} {v:.3f}" for k, v in result.detection["ap50"].items())
        print(
            f"detection mAP@0.5: {result.detection['map50']:.3f} (AP@0.5 {per_class})"
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

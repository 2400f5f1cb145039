"""The evaluation's outputs: ``results.json`` for machines, ``report.md`` with PNG figures for people."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vision.evaluate.metrics import METRIC_HELP, Metrics
from vision.evaluate.plots import table_png, timeline_png
from vision.evaluate.suite import SuiteResult

COLUMNS = [  # (metric key, column title) of the events table
    ("incidents", "incidents"),
    ("detected", "detected"),
    ("tickets", "tickets"),
    ("false_tickets", "false"),
    ("precision", "precision"),
    ("recall", "recall"),
    ("f1", "F1"),
    ("duplicates_per_incident", "dup./incident"),
    ("time_to_detect_mean", "detect s (mean)"),
    ("time_to_detect_max", "detect s (max)"),
    ("time_to_close_mean", "close s (mean)"),
    ("time_to_close_max", "close s (max)"),
    ("false_closes", "false closes"),
    ("unclosed", "unclosed"),
]


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def events_table(events: dict[str, Metrics]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the per-type scores, as the report and the README show them."""
    header = ["event type", *(title for _, title in COLUMNS)]
    rows = [
        [name, *(_fmt(m[key], 1 if "time" in key else 2) for key, _ in COLUMNS)] for name, m in events.items()
    ]
    return header, rows


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join([*lines, *("| " + " | ".join(r) + " |" for r in rows)])


def _round(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_round(v) for v in value]
    return round(value, 3) if isinstance(value, float) else value


def results_record(
    result: SuiteResult, suite: str, failures: list[str] | None, overrides: list[str] | None = None
) -> dict[str, Any]:
    """Everything the run measured, and the ``--model``/``--set`` overrides it ran with, JSON-ready."""
    videos = []
    for video, replay, vm in zip(result.videos, result.replays, result.matches, strict=True):
        m = vm.matching
        videos.append(
            {
                "name": video.name,
                "truth": str(video.path),
                "video": str(video.truth.video),
                "frames": replay.frames,
                "frames_held": replay.held,
                "wall_seconds": round(replay.wall_seconds, 2),
                "fps": None if replay.fps is None else round(replay.fps, 1),
                "video_end": round(replay.video_end, 3),
                "error": replay.error,
                "incidents": [
                    {
                        **inc.model_dump(exclude_defaults=True),
                        "tickets": [vm.tickets[k].event_id for k in out.tickets],
                        "time_to_detect": _round(out.time_to_detect),
                        "time_to_close": _round(out.time_to_close),
                        "false_closes": out.false_closes,
                        "close_due": _round(out.close_due),
                        "unclosed": out.unclosed,
                    }
                    for inc, out in zip(vm.incidents, m.outcomes, strict=True)
                ],
                "tickets": [
                    {
                        **{k: _round(v) for k, v in vars(t).items() if k != "box"},
                        "role": role.value,
                        "incident": incident,
                    }
                    for t, role, incident in zip(vm.tickets, m.roles, m.incident_of, strict=True)
                ],
            }
        )
    return {
        "suite": suite,
        "overrides": overrides or [],
        "frames": result.frames,
        "wall_seconds": round(result.wall_seconds, 2),
        "fps": round(result.frames / result.wall_seconds, 1) if result.wall_seconds else None,
        "events": {t: {k: _round(v) for k, v in m.items()} for t, m in result.events.items()},
        "detection": result.detection,
        "thresholds": None if failures is None else {"passed": not failures, "failures": failures},
        "videos": videos,
    }


def write_report(
    result: SuiteResult, out: Path, suite: str, failures: list[str] | None, overrides: list[str] | None = None
) -> Path:
    """Write results.json, report.md and its PNGs into ``out``; return the Markdown file."""
    out.mkdir(parents=True, exist_ok=True)
    record = results_record(result, suite, failures, overrides)
    (out / "results.json").write_text(json.dumps(record, indent=2) + "\n")
    header, rows = events_table(result.events)
    (out / "metrics.png").write_bytes(table_png("Event-level scores per event type", header, rows))
    lines = [
        "# street-vision evaluation",
        "",
        f"Suite `{suite}`: {len(result.replays)} video(s), {record['frames']} frames through the "
        f"pipeline in {record['wall_seconds']} s ({record['fps']} frames/s)."
        + "".join(f" `{o}`" for o in record["overrides"]),
        "",
        "## Events",
        "",
        markdown_table(header, rows),
        "",
        "![scores](metrics.png)",
        "",
        *(f"- **{key}**: {text}" for key, text in METRIC_HELP.items()),
        "",
    ]
    if result.detection is not None:
        det = result.detection
        det_rows = [
            [name, str(v["frames"]), str(v["gt_boxes"]), _fmt(v["map50"]), _ap(v["ap50"])]
            for name, v in det["videos"].items()
        ]
        det_rows.append(["all", "", "", _fmt(det["map50"]), _ap(det["ap50"])])
        header = ["video", "frames", "boxes", "mAP@0.5", "AP@0.5 per class"]
        lines += ["## Detection", "", markdown_table(header, det_rows), ""]
    if failures is not None:
        lines += ["## Thresholds", ""]
        lines += [f"- FAILED {f}" for f in failures] or ["All scores meet their thresholds."]
        lines.append("")
    lines += ["## Videos", ""]
    for video_record, replay, vm in zip(record["videos"], result.replays, result.matches, strict=True):
        name = video_record["name"]
        (out / f"{name}.timeline.png").write_bytes(timeline_png(name, vm, replay.video_end))
        lines += _video_section(video_record, name)
    (out / "report.md").write_text("\n".join(lines).rstrip() + "\n")
    return out / "report.md"


def _ap(per_label: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in per_label.items()) or "-"


def _video_section(v: dict[str, Any], name: str) -> list[str]:
    lines = [
        f"### {name}",
        "",
        f"`{v['video']}`: {v['frames']} frames, {v['fps']} frames/s"
        + (f"; error: {v['error']}" if v["error"] else ""),
        "",
        f"![timeline of {name}]({name}.timeline.png)",
        "",
    ]
    rows = [
        [
            str(i),
            inc["type"],
            inc["zone"],
            _fmt(inc["start"], 1),
            _fmt(inc.get("end"), 1),
            "ambiguous" if inc.get("ambiguous") else str(len(inc["tickets"])),
            _fmt(inc["time_to_detect"], 1),
            _fmt(inc["time_to_close"], 1),
            str(inc["false_closes"]),
            inc.get("note", ""),
        ]
        for i, inc in enumerate(v["incidents"])
    ]
    header = ["#", "type", "zone", "start", "end", "tickets", "detect s", "close s", "false closes", "note"]
    lines += [markdown_table(header, rows), ""] if rows else ["No incidents.", ""]
    rows = [
        [
            t["type"],
            t["zone"],
            t["subject"],
            _fmt(t["opened_at"], 1),
            (_fmt(t["resolved_at"], 1) if t["resolved_at"] is not None else "open at end")
            + "".join(f" (closed at {c:.1f}, reopened)" for c in t["reopened_after"]),
            t["role"],
            _fmt(t["incident"]),
        ]
        for t in v["tickets"]
    ]
    header = ["type", "zone", "subject", "opened", "closed", "verdict", "incident #"]
    lines += [markdown_table(header, rows), ""] if rows else ["No tickets.", ""]
    return lines

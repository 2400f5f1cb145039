"""``street-vision eval compare A/results.json B/results.json``: two runs side by side.

Two runs of a suite (another model, other settings) are compared score by score: each
event type's metrics, detection mAP and AP per class, frames per second, and whether the
thresholds passed, with B minus A. Written as ``compare.md`` for people and
``compare.json`` for machines.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vision.config import ConfigError
from vision.evaluate.metrics import METRIC_HELP
from vision.evaluate.report import markdown_table

Row = dict[str, Any]  # {"score": name, "a": value, "b": value, "delta": b - a or None}


def load_results(path: Path) -> dict[str, Any]:
    """A results.json written by ``street-vision eval``; anything else is a ConfigError naming the file."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the results: {exc.strerror or exc}"]) from None
    except json.JSONDecodeError as exc:
        raise ConfigError([f"{path}: not JSON: {exc.msg} (line {exc.lineno})"]) from None
    if not isinstance(record, dict) or not {"suite", "events", "videos"} <= set(record):
        raise ConfigError([f"{path}: not a results.json of street-vision eval (needs suite, events, videos)"])
    return record


def _row(score: str, a: Any, b: Any) -> Row:
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (a, b))
    return {"score": score, "a": a, "b": b, "delta": round(b - a, 3) if numbers else None}


def compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Every score of two runs, row by row; a score only one run has shows None for the other."""
    events: dict[str, list[Row]] = {}
    for event_type in sorted(set(a["events"]) | set(b["events"])):
        ma, mb = a["events"].get(event_type, {}), b["events"].get(event_type, {})
        events[event_type] = [_row(key, ma.get(key), mb.get(key)) for key in METRIC_HELP]
    da, db = a.get("detection") or {}, b.get("detection") or {}
    labels = sorted(set(da.get("ap50", {})) | set(db.get("ap50", {})))
    detection = [
        _row("map50", da.get("map50"), db.get("map50")),
        *(
            _row(f"ap50.{label}", da.get("ap50", {}).get(label), db.get("ap50", {}).get(label))
            for label in labels
        ),
    ]
    run = [
        _row("frames", a.get("frames"), b.get("frames")),
        _row("fps", a.get("fps"), b.get("fps")),
        _row("thresholds passed", _passed(a), _passed(b)),
    ]
    return {
        "a": {"suite": a["suite"], "overrides": a.get("overrides", [])},
        "b": {"suite": b["suite"], "overrides": b.get("overrides", [])},
        "run": run,
        "events": events,
        "detection": detection,
    }


def _passed(record: dict[str, Any]) -> bool | None:
    thresholds = record.get("thresholds")
    return None if thresholds is None else bool(thresholds["passed"])


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _table(rows: list[Row]) -> str:
    body = [
        [r["score"], _cell(r["a"]), _cell(r["b"]), "" if r["delta"] is None else f"{r['delta']:+g}"]
        for r in rows
    ]
    return markdown_table(["score", "A", "B", "B - A"], body)


def write_comparison(a_path: Path, b_path: Path, out: Path) -> Path:
    """Write compare.md and compare.json into ``out``; return the Markdown file."""
    a, b = load_results(a_path), load_results(b_path)
    result = compare(a, b)
    result["a"]["results"], result["b"]["results"] = str(a_path), str(b_path)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["# street-vision evaluation: two runs side by side", ""]
    for side in ("a", "b"):
        run = result[side]
        settings = ", ".join(f"`{o}`" for o in run["overrides"]) or "as in the files"
        lines.append(
            f"- **{side.upper()}**: `{run['results']}` (suite `{run['suite']}`; settings: {settings})"
        )
    lines += [
        "",
        "## Run",
        "",
        _table(result["run"]),
        "",
        "## Detection",
        "",
        _table(result["detection"]),
        "",
    ]
    for event_type, rows in result["events"].items():
        lines += [f"## {event_type}", "", _table(rows), ""]
    (out / "compare.md").write_text("\n".join(lines).rstrip() + "\n")
    return out / "compare.md"

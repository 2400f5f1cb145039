"""Gate and promote: a new model replaces the running one only when no class got worse.

Both models run through our detector path on the dataset's val split (whole cameras the
candidate never trained on), and AP@0.5 of every class with boxes there is compared. The
candidate passes when no class and not the mean drop by more than ``margin``, and, given
evaluation suites, when no event type lost F1 or got slower to detect (vision/tuning/suites.py). Promotion
writes ``current.yaml`` in the model's folder (the card ``run`` points at) and keeps the
card it replaces as ``previous.yaml``, so a rollback is one more promote.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from vision.detect.card import ModelCard, load_card
from vision.evaluate.report import markdown_table
from vision.tuning.errors import TuningError
from vision.tuning.layout import Dataset
from vision.tuning.metrics import split_metrics
from vision.tuning.suites import events_png, suite_gate
from vision.tuning.suites import table as suite_table

CURRENT, PREVIOUS, HISTORY = "current.yaml", "previous.yaml", "promotions.jsonl"


def compare(candidate: dict[str, Any], current: dict[str, Any], margin: float) -> dict[str, Any]:
    """Per class AP side by side and the decision: ``promote`` or ``keep``."""
    rows = []
    for name in sorted(set(candidate["ap50"]) | set(current["ap50"])):
        new, old = candidate["ap50"].get(name, 0.0), current["ap50"].get(name, 0.0)
        rows.append(
            {
                "class": name,
                "current": old,
                "candidate": new,
                "delta": round(new - old, 4),
                "regressed": new < old - margin,
            }
        )
    mean_drop = (current["map50"] or 0.0) - (candidate["map50"] or 0.0)
    regressed = [r["class"] for r in rows if r["regressed"]]
    decision = "keep" if regressed or mean_drop > margin or not rows else "promote"
    reason = (
        "no class with boxes in val"
        if not rows
        else f"AP@0.5 dropped by more than {margin} for {', '.join(regressed)}"
        if regressed
        else f"mAP@0.5 dropped by {mean_drop:.4f} (> {margin})"
        if mean_drop > margin
        else f"no class dropped by more than {margin}"
    )
    return {"decision": decision, "reason": reason, "margin": margin, "classes": rows}


def gate(
    candidate: ModelCard,
    current: ModelCard,
    dataset: Dataset,
    margin: float,
    threads: int = 0,
    suites: list[Path] | None = None,
    event_margin: float = 0.05,
    detect_margin: float = 2.0,
) -> dict[str, Any]:
    """Measure both models on the val split (and on the evaluation ``suites``) and decide."""
    new = split_metrics(candidate, dataset, "val", threads)
    old = split_metrics(current, dataset, "val", threads)
    report = {
        "candidate": {"card": str(candidate.card_path), "name": candidate.name, **new},
        "current": {"card": str(current.card_path), "name": current.name, **old},
        "data": str(dataset.data_yaml),
        **compare(new, old, margin),
    }
    if suites:
        events = suite_gate(candidate, current, suites, event_margin, detect_margin)
        report["events"] = events
        if events["regressed"]:
            why = f"events regressed: {'; '.join(events['regressed'])}"
            first = report["decision"] == "promote"
            report["reason"] = why if first else f"{report['reason']}; {why}"
            report["decision"] = "keep"
    return report


def markdown(report: dict[str, Any]) -> str:
    """The gate report for humans."""
    new, old = report["candidate"], report["current"]
    lines = [
        f"# Gate: {new['name']} against {old['name']}",
        "",
        f"Val split of `{report['data']}`: {new['images']} images, {new['boxes']} boxes. "
        f"AP@0.5 through street-vision's detector path; margin {report['margin']}.",
        "",
        "| class | current | candidate | delta |",
        "| --- | ---: | ---: | ---: |",
        *(
            f"| {r['class']} | {r['current']:.3f} | {r['candidate']:.3f} | {r['delta']:+.3f}"
            f"{' (regressed)' if r['regressed'] else ''} |"
            for r in report["classes"]
        ),
        f"| **mean** | {old['map50'] or 0:.3f} | {new['map50'] or 0:.3f} | "
        f"{(new['map50'] or 0) - (old['map50'] or 0):+.3f} |",
        "",
    ]
    events = report.get("events")
    if events:
        lines += [
            "## Evaluation suites",
            "",
            f"Each suite replayed with each model (`street-vision eval --model`); an event type regresses "
            f"when its F1 drops by more than {events['f1_margin']} or its mean time to detect grows by "
            f"more than {events['detect_margin']} s.",
            "",
            markdown_table(*suite_table(events)),
            "",
            "![event scores](events.png)",
            "",
        ]
    lines += [f"**Decision: {report['decision']}** ({report['reason']}).", ""]
    return "\n".join(lines)


def write_report(report: dict[str, Any], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    if report.get("events"):
        (out / "events.png").write_bytes(events_png(report["events"]))
    (out / "gate.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / "gate.md").write_text(markdown(report), encoding="utf-8")
    return out / "gate.json"


def promote(card_path: Path, gate_report: Path | None, force: bool) -> dict[str, Any]:
    """Make ``card_path`` (a version's card, ``NAME/vNNN/NAME.yaml``) the current model of ``NAME/``."""
    card = load_card(card_path)
    folder = card.card_path.resolve().parent.parent
    verdict = None
    if gate_report is not None:
        try:
            verdict = json.loads(gate_report.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise TuningError(f"--gate {gate_report}: cannot read the gate report: {exc}") from None
        if Path(verdict["candidate"]["card"]).resolve() != card.card_path.resolve():
            raise TuningError(
                f"--gate {gate_report}: it judged {verdict['candidate']['card']}, not {card_path}"
            )
    if not force and (verdict is None or verdict["decision"] != "promote"):
        why = "no gate report (--gate)" if verdict is None else f"the gate said keep: {verdict['reason']}"
        raise TuningError(
            f"not promoting {card_path}: {why}; run `street-vision models gate`, or pass --force"
        )
    current = folder / CURRENT
    if current.is_file():
        shutil.copyfile(current, folder / PREVIOUS)
    data = card.model_dump(mode="json", exclude_none=True)
    data["file"] = card.model_path.resolve().relative_to(folder).as_posix()
    current.write_text(
        f"# The model `run` uses; written by `street-vision models promote` from {card_path}.\n"
        + yaml.safe_dump(data, sort_keys=False, allow_unicode=True),
        encoding="utf-8",
    )
    load_card(current)  # the written card checks out against its file
    entry = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "card": str(card_path),
        "name": card.name,
        "forced": force,
        "gate": None if verdict is None else {"decision": verdict["decision"], "reason": verdict["reason"]},
    }
    with (folder / HISTORY).open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry) + "\n")
    return {
        "current": str(current),
        "previous": str(folder / PREVIOUS) if (folder / PREVIOUS).is_file() else None,
        **entry,
    }

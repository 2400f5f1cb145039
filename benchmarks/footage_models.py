"""The real footage suite with each model: the scores README and docs/evaluation.md quote.

tests/footage_suite/ (vtest, the car-park lane, the highway) replayed by ``street-vision eval`` with its
defaults, once with the embedded SSD and once with the YOLOv8n INT8 model of the shared data (its card
made by ``street-vision models card``): per event type precision, recall, F1, false tickets, the longest
time to detect and to close; person AP@0.5 per annotated video; and every ticket with its times. Stream
seconds and counts, not timings: the machine's load does not change them.

Usage: ``PYTHONPATH=$PWD python benchmarks/footage_models.py`` (writes footage_models.md and .json beside it).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distant_placement import yolo_card  # noqa: E402  (beside this file)
from motion_gate import SUITES, ap50, run_eval, tickets  # noqa: E402  (beside this file)
from report import machine, machine_line, publish  # noqa: E402  (beside this file)

KEYS = ("precision", "recall", "f1", "false_tickets", "time_to_detect_max", "time_to_close_max", "unclosed")


def scores(card: Path | None, out: Path) -> dict[str, Any]:
    run = run_eval(SUITES["footage"], out, gated=True, model=card)
    results = run["results"]
    return {
        "passed": run["passed"],
        "failures": run["failures"],
        "events": {kind: {k: e.get(k) for k in KEYS} for kind, e in results["events"].items()},
        "ap50": ap50(results),
        "tickets": tickets(results),
    }


def markdown(record: dict[str, Any]) -> str:
    lines = [
        "# The real footage suite, by model",
        "",
        "Written by benchmarks/footage_models.py: `street-vision eval tests/footage_suite/suite.yaml`, its "
        "defaults (motion gate on), with each model; stream seconds and counts, not timings, so the "
        "machine's load does not change them.",
        "",
        machine_line(record["machine"], "onnxruntime")
        + (" A loaded machine (other work beside it)." if record.get("preliminary") else ""),
        "",
        "| model | event type | precision | recall | F1 | false tickets | time to detect, max (s) "
        "| time to close, max (s) | unclosed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for model, r in record["models"].items():
        for kind, e in r["events"].items():
            cells = ("-" if e[k] is None else str(e[k]) for k in KEYS)  # no incident of that type
            lines.append(f"| {model} | {kind} | " + " | ".join(cells) + " |")
    lines += ["", "| model | thresholds | person AP@0.5 per annotated video |", "|---|---|---|"]
    for model, r in record["models"].items():
        verdict = "pass" if r["passed"] else "fail: " + "; ".join(r["failures"])
        aps = "; ".join(f"{v} {c.get('person')}" for v, c in r["ap50"].items())
        lines.append(f"| {model} | {verdict} | {aps} |")
    lines += ["", "Tickets (type, zone, incident matched or false, role, opened and closed at):", ""]
    for model, r in record["models"].items():
        for video, found in r["tickets"].items():
            for t in found:
                what = "false" if t["incident"] is None else f"incident {t['incident']}"
                lines.append(
                    f"- {model}, {video}: {t['type']} {t['zone']} ({what}, {t['role']}) "
                    f"{t['opened_at']}-{t['resolved_at']}"
                )
    return "\n".join(lines) + "\n"


def main() -> None:
    record: dict[str, Any] = {"machine": machine(), "models": {}}
    with tempfile.TemporaryDirectory(prefix="footage-models-") as tmp:
        for model, card in (("embedded SSD", None), ("YOLOv8n INT8", yolo_card(Path(tmp)))):
            record["models"][model] = scores(card, Path(tmp) / model.replace(" ", "-"))
    publish("footage_models", record, markdown)


if __name__ == "__main__":
    main()

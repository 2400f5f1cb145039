"""What the planner's surveys add to the detector's work, per inference round, for N cameras run together.

No timing and no video: the planners of N staggered cameras (the capacity farm's: 1280x720,
one zone over the whole picture, the embedded SSD's card) are asked for their boxes frame
by frame, as the pipeline asks them before each round, and told that nobody was seen (a car
park that stays empty: surveys never stop). Counted per round: the inferences beyond one
whole frame per camera. At 0.5 detections/s a round is 2 s, so a 30 s window is 15 rounds.
Compared in the same run: whole surveys (``survey_tiles: 0``, a survey's every tile on one
frame, as before surveys rolled) and rolling ones (``survey_tiles`` 1, 2, 4). Also: the rounds
until a camera's first survey has looked at every tile once (how long a small person standing
in the last tile goes unseen, at worst, while nobody else is seen).

Usage: ``python benchmarks/survey_load.py [--cameras 100] [--rounds 450] [--window 15]``;
writes survey_load.md and survey_load.json beside this file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vision.config import RegionsConfig  # noqa: E402
from vision.detect.card import load_card  # noqa: E402
from vision.detect.planner import Planner  # noqa: E402
from vision.scene.zones import Zone  # noqa: E402
from vision.types import Detections  # noqa: E402

WIDTH, HEIGHT = 1280, 720
WHOLE = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], float)


def extra_per_round(tiles: int, cameras: int, rounds: int) -> tuple[np.ndarray, int | None]:
    """Inferences beyond the whole frames, per round; rounds until camera 0 has looked at every tile
    (None: not within the run)."""
    card, config = load_card("default"), RegionsConfig(survey_tiles=tiles)
    zones = {"street": Zone("street", WHOLE)}
    planners = [Planner.for_camera(config, zones, None, card, i) for i in range(cameras)]
    extra = np.zeros(rounds, np.int64)
    looked: set[tuple[int, ...]] = set()
    whole = len(survey(card, zones))
    covered: int | None = None
    for r in range(rounds):
        for i, planner in enumerate(planners):
            boxes = planner.boxes(WIDTH, HEIGHT)
            if boxes is not None:
                extra[r] += len(boxes) - 1
                if i == 0:
                    looked |= {tuple(b) for b in boxes.tolist() if b != [0, 0, WIDTH, HEIGHT]}
            planner.observe(Detections.empty(), WIDTH, HEIGHT)
        if covered is None and looked and len(looked) == whole:
            covered = r + 1
    return extra, covered


def survey(card: Any, zones: dict[str, Zone]) -> np.ndarray:
    """The tiles of a whole survey: what a camera's first frame gets with ``survey_tiles: 0``."""
    first = Planner.for_camera(RegionsConfig(survey_tiles=0), zones, None, card).boxes(WIDTH, HEIGHT)
    assert first is not None
    return first[(first != [0, 0, WIDTH, HEIGHT]).any(axis=1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=450, help="inference rounds (450: 15 min at 0.5/s)")
    parser.add_argument("--window", type=int, default=15, help="rounds per window (15: 30 s at 0.5/s)")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("survey_load"))
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    for tiles in (0, 1, 2, 4):
        extra, covered = extra_per_round(tiles, args.cameras, args.rounds)
        windows = extra[: len(extra) // args.window * args.window].reshape(-1, args.window)
        share = windows.sum(axis=1) / (args.cameras * args.window)  # extra inferences per whole frame
        rows.append(
            {
                "survey_tiles": tiles,
                "max_extra_per_round": int(extra.max()),
                "window_share": [round(float(x), 3) for x in share],
                "max_window_share": round(float(share.max()), 3),
                "last_window_share": round(float(share[-1]), 3),
                "total_share": round(float(extra.sum() / (args.cameras * len(extra))), 3),
                "rounds_to_cover": covered,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    result = {"cameras": args.cameras, "rounds": args.rounds, "window": args.window, "policies": rows}
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))


def markdown(result: dict[str, Any]) -> str:
    n, window = result["cameras"], result["window"]
    lines = [
        "# Survey load: what surveys add to the detector's work (benchmarks/survey_load.py)",
        "",
        f"{n} cameras run together (staggered), 1280x720, one zone over the whole picture, the embedded "
        f"SSD's card, nobody ever seen (surveys never stop); {result['rounds']} inference rounds (at 0.5 "
        f"detections/s: {result['rounds'] * 2 / 60:.0f} min). Counted, not timed: inferences beyond one "
        f"whole frame per camera. Share: those per whole-frame inference, per window of {window} rounds "
        f"({window * 2} s at 0.5/s). Cover: rounds until camera 0 has looked at every survey tile once.",
        "",
        "| survey_tiles | most extra in one round | share, worst window | share, first windows "
        "| share, last window | share, whole run | rounds to cover |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in result["policies"]:
        first = ", ".join(f"{x:.2f}" for x in p["window_share"][:6])
        name = "0 (whole survey on one frame)" if p["survey_tiles"] == 0 else str(p["survey_tiles"])
        lines.append(
            f"| {name} | {p['max_extra_per_round']} | {p['max_window_share']:.3f} | {first} | "
            f"{p['last_window_share']:.3f} | {p['total_share']:.3f} | {p['rounds_to_cover']} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

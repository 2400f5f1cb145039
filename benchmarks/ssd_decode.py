"""The embedded SSD's pre/post-processing alone, this checkout against another: CPU microseconds per image.

Frames of the sample videos (768x576, one a second). Each side runs in its own process with
that checkout first on its path (``--worker``): ``place`` (the stretch to 300x300) and
``to_tensor`` per frame, and ``decode_ssd_boxes`` (score filter, class-aware NMS, the
one-label pass, boxes to source pixels) on the model's outputs for those frames, at batch 1 and 6
(the pipeline batches the frames of several cameras; ``to_tensor`` too at both). Each function's
time is its thread CPU time (``time.thread_time``) over all frames, the best of ``--repeat``
passes; rounds alternate the sides so a shared machine's swings hit both; medians over the
rounds. Both sides decode the same outputs (computed once per worker by the same model), and
the worker checks that the boxes it decodes are those of the detector's whole call.

Usage: ``python3 benchmarks/ssd_decode.py --before /path/to/main [--rounds 4] [--repeat 5]``;
writes benchmarks/ssd_decode.{md,json}. A minute on 2 busy cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(__file__).resolve().parent
sys.path.insert(0, str(OUT))

from report import arguments, caveats, machine, machine_line, publish, run_worker  # noqa: E402  (beside this file)

VIDEOS = ("plaza", "litter", "bike_parking")
BATCHES = (1, 6)
MIN_SCORE = 0.4  # the detector's default


def worker(repeat: int) -> dict[str, float]:
    """This process's checkout (first on sys.path): CPU us per image of each function."""
    import cv2
    import numpy as np

    from vision.detect.card import DEFAULT_CARD, load_card
    from vision.detect.detector import Detector
    from vision.detect.preprocess import place, to_tensor
    from vision.detect.ssd import decode_ssd_boxes

    cv2.setNumThreads(1)  # the pipeline's setting with more cameras than cores
    card = load_card(DEFAULT_CARD)
    detector = Detector(card, threads=1, min_score=MIN_SCORE)
    engine = detector.engine
    frames = []
    for video in VIDEOS:
        capture = cv2.VideoCapture(str(ROOT / "sample_videos" / f"{video}.mp4"))
        ok, index = True, 0
        while ok:
            ok, image = capture.read()
            if ok and index % 10 == 0:
                frames.append(image)
            index += 1

    def best(call: Callable[[], object]) -> float:
        times = []
        for _ in range(repeat):
            start = time.thread_time()
            call()
            times.append(time.thread_time() - start)
        return min(times)

    out = {
        "place_us": best(lambda: [place(f, card.input) for f in frames]) / len(frames) * 1e6,
    }
    placed = [place(f, card.input) for f in frames]
    images = [p for p, _ in placed]
    for size in BATCHES:
        batches = [images[i : i + size] for i in range(0, len(images) - size + 1, size)]
        timed = best(lambda batches=batches: [to_tensor(b, card.input) for b in batches])
        out[f"to_tensor_b{size}_us"] = timed / (len(batches) * size) * 1e6
    for size in BATCHES:
        calls = []
        for start in range(0, len(placed) - size + 1, size):
            chunk = placed[start : start + size]
            outputs = engine.model.run(to_tensor([p for p, _ in chunk], card.input))
            calls.append(([o.copy() for o in outputs], [g for _, g in chunk]))
        found = [d for o, g in calls for d in decode_ssd_boxes(o, g, engine.params)]
        whole = engine.infer(frames[: len(found)])
        for a, b in zip(found, whole, strict=True):  # the timed calls decode what the detector finds
            if not (np.array_equal(a.xyxy, b.xyxy) and np.array_equal(a.score, b.score)):
                raise SystemExit("decoded boxes differ from the detector's")
        timed = best(lambda calls=calls: [decode_ssd_boxes(o, g, engine.params) for o, g in calls])
        out[f"decode_b{size}_us"] = timed / (len(calls) * size) * 1e6
    out["frames"] = len(frames)
    out["boxes_per_frame"] = sum(len(d) for d in found) / len(found)
    return out


def markdown(result: dict[str, Any]) -> str:
    before, after = result["before"], result["after"]
    rows = [
        ("place (stretch to 300x300)", "place_us"),
        *[(f"to_tensor, batch {b}", f"to_tensor_b{b}_us") for b in BATCHES],
        *[(f"decode_ssd_boxes, batch {b}", f"decode_b{b}_us") for b in BATCHES],
    ]
    lines = [
        "# The embedded SSD's pre/post-processing: this branch against the other checkout",
        "",
        machine_line(result["machine"], "numpy"),
        "",
        *caveats(result),
        f"`{result['command']}`. {before['frames']:.0f} frames of the sample videos (one a second, 768x576), "
        f"{after['boxes_per_frame']:.1f} boxes per frame at min_score {MIN_SCORE}. Thread CPU microseconds "
        f"per image, best of {result['repeat']} passes, median of {result['rounds']} rounds alternating the "
        "sides, each side in its own process on its own checkout; OpenCV on one thread.",
        "",
        "| function | before (us) | after (us) | after / before |",
        "|---|---|---|---|",
    ]
    for name, key in rows:
        lines.append(f"| {name} | {before[key]:.0f} | {after[key]:.0f} | {after[key] / before[key]:.2f} |")
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = arguments(__doc__, rounds=4)
    parser.add_argument("--before", type=Path, help="the other checkout")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        sys.path.insert(0, os.environ["PYTHONPATH"])
        print(json.dumps(worker(args.repeat)))
        return
    if args.before is None:
        parser.error("--before CHECKOUT is required")
    started = machine()
    sides: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    for round_ in range(args.rounds):
        order = [("before", args.before), ("after", ROOT)]
        for name, checkout in order if round_ % 2 == 0 else order[::-1]:
            sides[name].append(run_worker(__file__, checkout.resolve(), "--repeat", str(args.repeat)))
    result: dict[str, Any] = {
        side: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        for side, runs in sides.items()
    }
    result |= {
        "rounds": args.rounds,
        "repeat": args.repeat,
        "runs": sides,
        "note": args.note,
        "command": "python3 benchmarks/ssd_decode.py " + " ".join(sys.argv[1:]),
        "machine": started,
    }
    publish("ssd_decode", result, markdown)


if __name__ == "__main__":
    main()

"""The embedded SSD's detections, this checkout against another: identical bit for bit, or not.

A pure speed change to the detector's post-processing must not move one box. Each side runs in its
own process with its checkout first on the path (``--worker``) over every frame of the sample videos
and the shared footage, and hashes what it returns (every array's bytes, dtype and shape):
``Detector.detect`` per frame (batch 1), per 6 consecutive frames (batch 6, the pipeline's batch of
cameras), and per 6 frames cut into two overlapping crops each (the regions path, every 5th batch);
and the same three with ``detector.classes`` set (the capacity camera's seven: the decoder skips a batch in
which none of them scores, most with boxes of other classes alone); and
``decode_ssd_boxes`` on the model's outputs for those 6 frames (batch 6 and batch 1) at settings
the detector's defaults do not reach: a low min_score (past one NMS block of 256 candidates) and an
IoU above the one-label pass's. The report counts the calls whose hashes agree.

Usage: ``python3 benchmarks/ssd_identity.py --before /path/to/main [--every 1]``; writes
benchmarks/ssd_identity.{md,json}. About 10 minutes on 2 busy cores.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(__file__).resolve().parent
sys.path.insert(0, str(OUT))

from report import arguments, caveats, machine, machine_line, publish, run_worker  # noqa: E402  (beside this file)

FOOTAGE = ROOT.parent / "shared" / "data" / "footage"
VIDEOS = (
    *(ROOT / "sample_videos" / f"{name}.mp4" for name in ("plaza", "litter", "bike_parking")),
    FOOTAGE / "vtest.avi",
    FOOTAGE / "parking_lane_topdown_intel.mp4",
    FOOTAGE / "highway_overpass_jitter_boofcv.mp4",
)
BATCH = 6
DECODE = ((0.05, 0.6), (0.3, 0.9))  # (min_score, iou) for decode_ssd_boxes on raw outputs
CLASSES = ["person", "bicycle", "bottle", "cup", "backpack", "handbag", "suitcase"]  # /tmp/probe/one.yaml's


def worker(videos: list[str], every: int) -> dict[str, Any]:
    """This process's checkout (first on sys.path): per kind of call, one short hash per call, and boxes."""
    import cv2
    import numpy as np

    from vision.detect.card import DEFAULT_CARD, load_card
    from vision.detect.detector import Detector
    from vision.detect.params import DecodeParams
    from vision.detect.preprocess import place, to_tensor
    from vision.detect.ssd import decode_ssd_boxes
    from vision.types import Detections

    cv2.setNumThreads(1)
    card = load_card(DEFAULT_CARD)
    detector = Detector(card, threads=1)
    kept = Detector(card, threads=1, classes=CLASSES)
    model = detector.engine.model  # type: ignore[attr-defined]
    hashes: dict[str, list[str]] = {}
    boxes: dict[str, int] = {}

    def note(kind: str, found: list[Detections]) -> None:
        digest = hashlib.sha256()
        for d in found:
            for array in (d.xyxy, d.score, d.class_id, d.track_id, *d.data.values()):
                digest.update(f"{array.dtype}{array.shape}".encode())
                digest.update(np.ascontiguousarray(array).tobytes())
        hashes.setdefault(kind, []).append(digest.hexdigest()[:16])
        boxes[kind] = boxes.get(kind, 0) + sum(len(d) for d in found)

    frames = 0
    for video in videos:
        capture = cv2.VideoCapture(video)
        group: list[np.ndarray] = []
        index = 0
        while True:
            ok, image = capture.read()
            if ok and index % every == 0:
                group.append(image)
            index += 1
            if len(group) < BATCH and ok:
                continue
            if group:
                frames += len(group)
                for which, chosen in (("", detector), (", classes", kept)):
                    for image in group:
                        note(f"detect{which}, batch 1", chosen.detect([image]))
                    note(f"detect{which}, batch 6", chosen.detect(group))
                    if len(hashes[f"detect{which}, batch 6"]) % 5 == 0:
                        height, width = group[0].shape[:2]
                        crops = np.array([[0, 0, width * 3 // 5, height], [width * 2 // 5, 0, width, height]])
                        cropped = chosen.detect(group, [crops] * len(group))
                        note(f"detect{which}, batch 6, two crops each", cropped)
                placed = [place(image, card.input) for image in group]
                outputs = model.run(to_tensor([p for p, _ in placed], card.input))
                geometries = [g for _, g in placed]
                for min_score, iou in DECODE:
                    params = DecodeParams(min_score=min_score, iou=iou)
                    note(
                        f"decode, batch 6, min_score {min_score}, iou {iou}",
                        decode_ssd_boxes(outputs, geometries, params),
                    )
                    first = [o[:1] for o in outputs]
                    note(
                        f"decode, batch 1, min_score {min_score}, iou {iou}",
                        decode_ssd_boxes(first, geometries[:1], params),
                    )
                group = []
            if not ok:
                break
    return {"frames": frames, "hashes": hashes, "boxes": boxes}


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# The embedded SSD's detections: this branch against the other checkout, bit for bit",
        "",
        machine_line(result["machine"], "numpy", "onnxruntime"),
        "",
        *caveats(result, "Only counts of identical calls are reported here, which load does not change."),
        f"`{result['command']}`. {result['frames']} frames of {', '.join(result['videos'])}; each call's "
        "Detections hashed (every array's bytes, dtype and shape) on each side, in its own process.",
        "",
        "| call | calls | identical | boxes (after) |",
        "|---|---|---|---|",
    ]
    for kind, row in result["kinds"].items():
        lines.append(f"| {kind} | {row['calls']} | {row['identical']} | {row['boxes']} |")
    lines += ["", f"All identical: **{result['identical']}**.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--before", type=Path, help="the other checkout")
    parser.add_argument("--every", type=int, default=1, help="every n-th frame of each video")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("videos", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        sys.path.insert(0, os.environ["PYTHONPATH"])
        print(json.dumps(worker(args.videos, args.every)))
        return
    if args.before is None:
        parser.error("--before CHECKOUT is required")
    missing = [str(v) for v in VIDEOS if not v.exists()]
    if missing:
        raise SystemExit(f"missing footage: {', '.join(missing)}")
    started = machine()
    videos = [str(v) for v in VIDEOS]
    before, after = (
        run_worker(__file__, side, "--every", str(args.every), *videos)
        for side in (args.before.resolve(), ROOT)
    )
    kinds = {
        kind: {
            "calls": len(hashes),
            "identical": sum(a == b for a, b in zip(hashes, before["hashes"].get(kind, []), strict=False)),
            "boxes": after["boxes"][kind],
        }
        for kind, hashes in after["hashes"].items()
    }
    result: dict[str, Any] = {
        "frames": after["frames"],
        "videos": [v.name for v in VIDEOS],
        "kinds": kinds,
        "identical": before["frames"] == after["frames"]
        and before["hashes"].keys() == after["hashes"].keys()
        and all(k["identical"] == k["calls"] == len(before["hashes"][n]) for n, k in kinds.items()),
        "note": args.note,
        "command": "python3 benchmarks/ssd_identity.py " + " ".join(sys.argv[1:]),
        "machine": started,
    }
    publish("ssd_identity", result, markdown)
    if not result["identical"]:
        raise SystemExit("the two checkouts' detections differ")


if __name__ == "__main__":
    main()

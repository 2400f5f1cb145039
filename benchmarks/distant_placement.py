"""How the embedded SSD's distant crowd ticket depends on where the plaza falls under the tiles.

The distant plaza of tests/test_footage_suite.py (the plaza sample scaled to a third inside a
1920x1080 frame, its truth scaled alike) at the test's place and shifted by a few pixels, each run
through ``street-vision eval`` with the defaults (the SSD, ``detect_regions: auto``). A shift moves
the people against the planner's tile grid, nothing else. Per placement and variant: when the
crowd ticket opened after the truth's crowd start (negative: before the crowd formed), when it
resolved after the crowd's end, its early closes (the crowd ticket resolved while the crowd stood
and reopened), false and unclosed tickets of any type, the distant person AP@0.5 and the SSD's
inferences a frame.

Variants: the code as it is (the tile merge's ``min_object_px`` rule, ``regions.seen_better``, and
the SSD card's two looks); "without the rule": a benchmark-only monkeypatch that makes
``seen_better`` drop nothing, the merge as before the rule (the rule has no setting to switch it
off); "one look": the SSD's card with ``looks: 1`` (a copy, ``--model``), one grid of tiles.
Counts and stream seconds, not timings: the numbers do not depend on the machine's load.

The SSD's results are cached per input image (its bytes and shape, with the card's name) in
``--cache`` so that a second run, or a variant that plans the same crops, costs no inference.

Usage: ``python benchmarks/distant_placement.py [--cache PATH]`` (writes distant_placement.md and
distant_placement.json beside it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.test_footage_suite import THIRD, faults, make_distant  # noqa: E402
from vision.cli import main as cli  # noqa: E402
from vision.detect import regions  # noqa: E402
from vision.detect.card import DEFAULT_CARD  # noqa: E402
from vision.detect.detector import OnnxEngine  # noqa: E402
from vision.types import Detections  # noqa: E402

SHIFTS = [(0, 0), (21, 13), (-17, 7), (9, -15)]  # pixels from the test's place (looks14b's study)
# name: (the min_object_px rule on, the card's looks); one look is a card of its own, no code edit
VARIANTS = {
    "with the rule": (True, 2),
    "without the rule (monkeypatch)": (False, 2),
    "one look (card looks: 1), with the rule": (True, 1),
}


def key(image: np.ndarray) -> bytes:
    return hashlib.blake2b(image.tobytes() + repr(image.shape).encode(), digest_size=16).digest()


class Counted:
    """OnnxEngine.infer with its results cached per input image, and the images it was asked for counted."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.store: dict[bytes, Detections] = pickle.loads(path.read_bytes()) if path.exists() else {}
        self.images = 0
        self.new = 0
        self.real: Callable[[OnnxEngine, list[np.ndarray]], list[Detections]] = OnnxEngine.infer

    def infer(self, engine: OnnxEngine, images: list[np.ndarray]) -> list[Detections]:
        name = engine.card.name.encode()
        keys = [key(image) + name for image in images]
        todo = [k for k in range(len(images)) if keys[k] not in self.store]
        for k, found in zip(todo, self.real(engine, [images[k] for k in todo]), strict=True):
            self.store[keys[k]] = found
        self.images += len(images)
        self.new += len(todo)
        return [self.store[k] for k in keys]

    def save(self) -> None:
        if self.new:
            part = self.path.with_suffix(".part")  # a run stopped while saving leaves the cache whole
            part.write_bytes(pickle.dumps(self.store))
            part.replace(self.path)
            self.new = 0


@contextmanager
def patched(counted: Counted, rule: bool) -> Iterator[None]:
    """The engine counted and cached; without ``rule``, the merge keeps every crop's people boxes."""
    real_rule = regions.seen_better
    OnnxEngine.infer = lambda engine, images: counted.infer(engine, images)  # type: ignore[method-assign]
    if not rule:
        regions.seen_better = lambda xyxy, *_: np.zeros(len(xyxy), bool)
    try:
        yield
    finally:
        OnnxEngine.infer = counted.real  # type: ignore[method-assign]
        regions.seen_better = real_rule


def one_look(folder: Path) -> Path:
    """A copy of the SSD's card with one grid of tiles (the card's ``looks``), its model where it lies."""
    card = yaml.safe_load(DEFAULT_CARD.read_text())
    card |= {"looks": 1, "file": str(DEFAULT_CARD.parent / card["file"])}
    (folder / DEFAULT_CARD.name).write_text(yaml.safe_dump(card))
    return folder / DEFAULT_CARD.name


def measure(truth: Path, out: Path, counted: Counted, rule: bool, card: Path | None) -> dict[str, object]:
    """One ``eval`` of the distant clip alone: its crowd ticket, faults, AP and inferences a frame."""
    suite = out.parent / f"{out.name}.suite.yaml"
    suite.write_text(yaml.safe_dump({"videos": [str(truth)]}))
    counted.images = 0
    with patched(counted, rule):
        code = cli(["eval", str(suite), "--out", str(out), *(["--model", str(card)] if card else [])])
    if code != 0:
        raise SystemExit(f"street-vision eval {suite} failed ({code})")
    scores = json.loads((out / "results.json").read_text())
    (video,) = scores["videos"]
    (crowd,) = [i for i in video["incidents"] if i["type"] == "crowd"]
    tickets = [t for t in video["tickets"] if t["event_id"] in crowd["tickets"]]
    resolved = [t["resolved_at"] for t in tickets if t.get("resolved_at") is not None]
    return {
        "crowd_opened_after_s": crowd["time_to_detect"],
        "crowd_resolved_after_end_s": round(max(resolved) - crowd["end"], 1) if resolved else None,
        "crowd_reopened_after": [r for t in tickets for r in t["reopened_after"]],
        "early_closes": sum(i["false_closes"] for i in video["incidents"] if not i.get("ambiguous")),
        "false_tickets": sum(t["role"] == "false" for t in video["tickets"]),
        "unclosed": sum(bool(i["unclosed"]) for i in video["incidents"] if not i.get("ambiguous")),
        "faults": faults(video),
        "person_ap50": round(scores["detection"]["videos"][video["name"]]["ap50"]["person"], 3),
        "inferences_a_detected_frame": round(counted.images / video["frames"], 2),
        "frames_detected": video["frames"],
        "frames_held": video["frames_held"],  # by the motion gate: nothing moved, no inference
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "distant_placement.pkl")
    args = parser.parse_args()
    counted = Counted(args.cache)
    truth_start = yaml.safe_load((ROOT / "sample_videos" / "plaza.truth.yaml").read_text())["incidents"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for dx, dy in SHIFTS:
            folder = Path(tmp) / f"at{dx}_{dy}"
            folder.mkdir()
            truth = make_distant(folder, THIRD[2] + dx, THIRD[3] + dy)
            for n, (variant, (rule, looks)) in enumerate(VARIANTS.items()):
                row = {"shift": [dx, dy], "variant": variant}
                card = one_look(Path(tmp)) if looks == 1 else None
                row |= measure(truth, folder / f"out-{n}", counted, rule, card)
                rows.append(row)
                counted.save()
                print(json.dumps(row), file=sys.stderr, flush=True)
    crowd = next(i for i in truth_start if i["type"] == "crowd")
    Path(__file__).with_suffix(".json").write_text(json.dumps(rows, indent=2) + "\n")
    Path(__file__).with_suffix(".md").write_text(report(rows, crowd["start"], crowd["end"]))


def report(rows: list[dict], start: float, end: float) -> str:
    """The Markdown page: what the columns mean, then one line per placement and variant."""
    head = [
        "# The SSD's distant crowd ticket, by where the plaza falls under the tiles",
        "",
        f"Written by benchmarks/distant_placement.py ({sys.platform}); stream seconds and counts, not",
        "timings.",
        f"The truth's crowd (sample_videos/plaza.truth.yaml) stands from {start} s to {end} s. Shift: pixels",
        f"from the test's place of the plaza, ({THIRD[2]}, {THIRD[3]}) in the 1920x1080 frame. Opened: the",
        "crowd ticket's open after the crowd formed (negative: before; the distant test allows -1 s, the",
        "truth's tolerance). Resolved: after the crowd's end. Closed early at: the stream second the crowd",
        "ticket resolved while the crowd stood (and reopened). False and unclosed: tickets of any type.",
        "Inferences a detected frame: the SSD's input images over the frames the motion gate let through.",
        "",
        "| shift | variant | opened (s) | resolved (s) | closed early at (s) | early closes | false "
        "| unclosed | person AP@0.5 | inferences a detected frame |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    return "\n".join(head + ["| " + " | ".join(map(str, cells(r))) + " |" for r in rows]) + "\n"


def cells(row: dict) -> list[object]:
    """One row of the table, in its columns' order."""
    shift = "{:+d},{:+d}".format(*row["shift"])
    reopened = ", ".join(map(str, row["crowd_reopened_after"])) or "-"
    keys = ("early_closes", "false_tickets", "unclosed", "person_ap50", "inferences_a_detected_frame")
    resolved = "never" if row["crowd_resolved_after_end_s"] is None else row["crowd_resolved_after_end_s"]
    head = [shift, row["variant"], row["crowd_opened_after_s"], resolved, reopened]
    return head + [row[k] for k in keys]


if __name__ == "__main__":
    main()

"""Mine a dataset from what the cameras saw: near-duplicates dropped, balanced, capped, traced.

Frames arrive from the sources (events first, so an event's picture wins over a
near-duplicate uniform sample), each is hashed and dropped if it looks like one already
kept from the same camera, and the survivors are written at once (only hashes stay in
memory). At the end the cap is shared fairly: every camera gets an equal share (a camera
with fewer frames leaves the rest to the others), inside a camera every hour of the day
likewise when wall times are known, and inside that events first, then uncertain
frames, then uniform samples spread evenly over time.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vision.tuning.errors import TuningError
from vision.tuning.phash import NearDuplicates
from vision.tuning.sources import PRIORITY, Candidate

MANIFEST = "manifest.jsonl"
IMAGES = "images"
JPEG_QUALITY = 95


@dataclass(frozen=True)
class MineOptions:
    """How many frames, how different, how often."""

    max_frames: int = 2000
    max_distance: int = 10  # dHash bits (of 256) within which two frames are the same picture


def fair_share(counts: dict[Hashable, int], total: int) -> dict[Hashable, int]:
    """Split ``total`` over groups equally; a group with fewer items gives what it cannot use to the rest."""
    share: dict[Hashable, int] = {}
    left = total
    order = sorted(counts, key=lambda k: counts[k])
    for i, key in enumerate(order):
        share[key] = min(counts[key], left // (len(order) - i))
        left -= share[key]
    return share


def evenly(items: list[dict], n: int) -> list[dict]:
    """``n`` of ``items`` spread evenly over the list (which is in time order)."""
    if n >= len(items):
        return items
    return [items[i] for i in np.linspace(0, len(items) - 1, n).round().astype(int)] if n else []


def pick(records: list[dict], quota: int) -> list[dict]:
    """Events first, then uncertain frames, then the uniform samples spread over time."""
    chosen: list[dict] = []
    for tier in sorted(set(PRIORITY.values())):
        group = [r for r in records if PRIORITY[r["source"]] == tier]
        chosen += evenly(group, quota - len(chosen))
    return chosen


def select(records: list[dict], total: int) -> list[dict]:
    """The balanced subset of at most ``total`` records (per camera, then per hour of wall time)."""
    by_camera: dict[str, list[dict]] = {}
    for r in records:
        by_camera.setdefault(r["camera"], []).append(r)
    chosen = []
    for camera, quota in fair_share({k: len(v) for k, v in by_camera.items()}, total).items():
        by_hour: dict[str | None, list[dict]] = {}
        for r in by_camera[str(camera)]:
            by_hour.setdefault(r["wall_time"][:13] if r["wall_time"] else None, []).append(r)
        for hour, hour_quota in fair_share({k: len(v) for k, v in by_hour.items()}, quota).items():
            chosen += pick(by_hour[hour], hour_quota)  # type: ignore[index]
    return chosen


def safe_name(camera: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", camera) or "camera"


class Miner:
    """Keeps the new-looking candidates on disk as they come, then balances them and writes the manifest."""

    def __init__(self, out: Path, options: MineOptions) -> None:
        if (out / MANIFEST).exists():
            raise TuningError(f"{out}: already holds a dataset ({MANIFEST}); mine into a new folder")
        self.out, self.options = out, options
        (out / IMAGES).mkdir(parents=True, exist_ok=True)
        self.hashes: dict[str, NearDuplicates] = {}
        self.records: list[dict[str, Any]] = []
        self.offered: Counter[str] = Counter()
        self.duplicates: Counter[str] = Counter()

    def offer(self, candidate: Candidate) -> None:
        self.offered[candidate.camera] += 1
        seen = self.hashes.setdefault(candidate.camera, NearDuplicates(self.options.max_distance))
        duplicate, code = seen.seen(candidate.image)
        if duplicate:
            self.duplicates[candidate.camera] += 1
            return
        staged = self.out / IMAGES / f".staged-{len(self.records)}.jpg"
        ok, jpeg = cv2.imencode(".jpg", candidate.image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise TuningError(f"{candidate.origin}: cannot encode a {candidate.image.shape} frame as JPEG")
        staged.write_bytes(jpeg.tobytes())
        height, width = candidate.image.shape[:2]
        self.records.append(
            {
                "staged": staged,
                **candidate.provenance(),
                "width": width,
                "height": height,
                "dhash": code.tobytes().hex(),
            }
        )

    def finish(self) -> dict[str, Any]:
        """Keep the balanced selection under its final names, delete the rest, write the manifest."""
        chosen = select(self.records, self.options.max_frames)
        chosen.sort(key=lambda r: (r["camera"], r["pts"] if r["pts"] is not None else -1.0, r["origin"]))
        keep = {id(r) for r in chosen}
        for r in self.records:
            if id(r) not in keep:
                r["staged"].unlink()
        lines = []
        for index, r in enumerate(chosen):
            name = f"{IMAGES}/{safe_name(r['camera'])}-{index:06d}.jpg"
            os.replace(r.pop("staged"), self.out / name)
            lines.append(json.dumps({"image": name, "index": index, **r}))
        (self.out / MANIFEST).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        return {
            "out": str(self.out),
            "frames": len(chosen),
            "cameras": {
                camera: {
                    "offered": self.offered[camera],
                    "near_duplicates": self.duplicates[camera],
                    "kept": sum(r["camera"] == camera for r in chosen),
                }
                for camera in sorted(self.offered)
            },
            "sources": dict(Counter(r["source"] for r in chosen)),
        }


def mine(sources: Iterable[Iterator[Candidate]], out: Path, options: MineOptions) -> dict[str, Any]:
    """Run every source through one miner (in the order given) and write the dataset."""
    miner = Miner(out, options)
    try:
        for source in sources:
            for candidate in source:
                miner.offer(candidate)
    except BaseException:
        for record in miner.records:  # a failed source leaves no half dataset behind
            record["staged"].unlink(missing_ok=True)
        raise
    return miner.finish()


def read_manifest(folder: Path) -> list[dict[str, Any]]:
    """The mined frames of a dataset folder, in index order."""
    path = folder / MANIFEST
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise TuningError(
            f"{path}: cannot read it ({exc.strerror or exc}); run `street-vision dataset mine` first"
        ) from None
    records = []
    for number, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise TuningError(f"{path}: line {number}: not valid JSON: {exc.msg}") from None
    return records

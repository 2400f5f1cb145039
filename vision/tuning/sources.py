"""Where mined frames come from: video files, folders of images, and a store's events and detections.

Every frame carries its provenance (camera, stream seconds, wall time when the camera
was live, the event it shows), so a label can always be traced back to what the camera
saw. Stream seconds are the same clock the pipeline stored its detections on.

Events are labelled examples: each transition's clean snapshot shows the situation the
rule raised a ticket for (or, on a close, the scene with it gone). A ticket the ticketing
side *rejected* (a worker or operator saying "not a real problem": the event closed with
reason ``rejected``) is a hard negative: its frames carry ``hard_negative: true`` in the
manifest, so an annotator checks what the model wrongly took for a problem there.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vision.config import DecodeConfig, StorageConfig
from vision.detect.quantize import IMAGE_SUFFIXES
from vision.ingest.clock import StreamClock
from vision.ingest.decoder import SourceError, VideoDecoder
from vision.ingest.sampler import Sampler
from vision.secrets import SecretUrl
from vision.store.base import EventStore
from vision.store.sqlite import Store, store_path
from vision.tuning.errors import TuningError

PRIORITY = {"event": 0, "uncertain": 1, "uniform": 2, "image": 2}  # who wins among near-duplicates


@dataclass
class Candidate:
    """One frame offered to the dataset, with where it came from."""

    camera: str
    image: np.ndarray
    source: str  # event, uncertain, uniform, image
    origin: str  # the video, snapshot or image file
    pts: float | None = None
    wall_time: str | None = None
    event: dict[str, Any] | None = None  # event_id, type, transition
    uncertain: dict[str, Any] | None = None  # label and score of the least sure box

    def provenance(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "camera": self.camera,
            "source": self.source,
            "origin": self.origin,
            "pts": None if self.pts is None else round(self.pts, 3),
            "wall_time": self.wall_time,
        }
        return record | (self.event or {}) | ({"uncertain": self.uncertain} if self.uncertain else {})


def _storage(store: StorageConfig | Path) -> StorageConfig:
    """A config's storage (SQLite in its data folder, or PostgreSQL at its url), or a SQLite data folder."""
    return store if isinstance(store, StorageConfig) else StorageConfig(data_dir=store)


def _open_store(storage: StorageConfig) -> EventStore:
    """The store, read as it is: no new run, no migration (mining never writes to it)."""
    if storage.url is not None:
        from vision.store.postgres import PostgresStore  # psycopg is only needed with storage.url

        return PostgresStore(storage.url, run=False, migrate=False)
    path = store_path(storage.data_dir)
    if not path.is_file():
        raise TuningError(f"store {path}: not found (run the pipeline first, or give --store DATA_DIR)")
    return Store(storage.data_dir, run=False, migrate=False)


def event_snapshots(store: StorageConfig | Path) -> Iterator[Candidate]:
    """The clean picture of every stored event transition, oldest first (the pictures are files in
    the data folder, whichever database holds the rows)."""
    storage = _storage(store)
    data_dir = storage.data_dir
    opened = _open_store(storage)
    try:
        rows = opened.transition_records()
        rejected = opened.rejected_events()
    finally:
        opened.close()
    for kind, pts, record in rows:
        clean = (record.get("snapshots") or {}).get("clean")
        if not clean:
            continue
        image = cv2.imread(str(data_dir / clean), cv2.IMREAD_COLOR)
        if image is None:
            continue  # pruned by retention, or never written: the event row still stands
        event = record["event"]
        yield Candidate(
            camera=event["camera"],
            image=image,
            source="event",
            origin=clean,
            pts=pts,
            wall_time=record.get("wall_time"),
            event={
                "event_id": event["event_id"],
                "event_type": event["type"],
                "transition": kind,
                **({"hard_negative": True} if event["event_id"] in rejected else {}),
            },
        )


def uncertain_times(
    store: StorageConfig | Path, low: float, high: float, spacing: float
) -> dict[str, list[dict]]:
    """Per camera, the stream seconds of frames with a box scored in [low, high), at least
    ``spacing`` seconds apart; each with the label and score of its least sure box."""
    opened = _open_store(_storage(store))
    try:
        rows = opened.uncertain_frames(low, high)
    finally:
        opened.close()
    times: dict[str, list[dict]] = {}
    for camera, pts, label, score in rows:
        kept = times.setdefault(camera, [])
        if not kept or pts - kept[-1]["pts"] >= spacing:
            kept.append({"pts": float(pts), "label": label, "score": round(float(score), 3)})
    return times


def video_frames(
    camera: str, url: SecretUrl, decode: DecodeConfig, every: float, wanted: list[dict] | None = None
) -> Iterator[Candidate]:
    """A frame every ``every`` stream seconds, plus the frame at (or just after) each wanted time.

    Stamped like the pipeline stamps a file, so the times match the store's detections.
    """
    wanted = sorted(wanted or [], key=lambda w: w["pts"])
    sampler, clock, next_wanted = Sampler(1.0 / every), StreamClock(live=False), 0
    try:
        with VideoDecoder(camera, url, decode) as decoder:
            for av_frame, raw_pts in decoder.frames():
                pts = clock.stamp(raw_pts, time.monotonic())
                hit = None
                while next_wanted < len(wanted) and wanted[next_wanted]["pts"] <= pts + 1e-3:
                    hit, next_wanted = wanted[next_wanted], next_wanted + 1
                due = sampler.due(pts)
                if hit is None and not due:
                    continue
                yield Candidate(
                    camera=camera,
                    image=decoder.image(av_frame),
                    source="uniform" if hit is None else "uncertain",
                    origin=str(url),
                    pts=pts,
                    uncertain=None if hit is None else {"label": hit["label"], "score": hit["score"]},
                )
    except SourceError as exc:
        raise TuningError(str(exc)) from None


def image_folder(folder: Path) -> Iterator[Candidate]:
    """Every image of a folder (sorted), as frames of one camera named after the folder."""
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise TuningError(f"{folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in this folder")
    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise TuningError(f"{path}: cannot read it as an image")
        yield Candidate(camera=folder.name, image=image, source="image", origin=str(path))

"""A suite of recordings: load every ground-truth file, replay each video, score the lot.

A suite is a folder (every ``*.truth.yaml``, ``*.truth.yml`` or ``*.truth.json`` in it)
or a YAML file listing ground-truth files and, optionally, the thresholds the scores
must meet. Every input is read and checked before the first video is replayed, so a
typo fails in a second, not after minutes of video.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from vision.config import ConfigError, StrictModel, load_yaml, resolve_path
from vision.detect.detector import Detector
from vision.evaluate.annotations import AnnotationError, FrameBoxes, load_boxes
from vision.evaluate.detection import FrameDetections, mean_average_precision
from vision.evaluate.match import match
from vision.evaluate.metrics import METRIC_HELP, Metrics, VideoMatch, event_metrics
from vision.evaluate.overrides import Override, apply_overrides, unused
from vision.evaluate.progress import Progress
from vision.evaluate.replay import Replay, camera_name, replay, video_rate
from vision.evaluate.truth import GroundTruth, load_truth

TRUTH_PATTERNS = ("*.truth.yaml", "*.truth.yml", "*.truth.json")
# why a metric has no value, for the threshold that needed one
NO_VALUE = {
    "precision": "no ticket",
    "recall": "no incident",
    "f1": "no incident",
    "duplicates_per_incident": "no incident detected",
    "time_to_detect_mean": "no incident detected",
    "time_to_detect_max": "no incident detected",
    "time_to_close_mean": "no incident that ended in the video had all its tickets closed",
    "time_to_close_max": "no incident that ended in the video had all its tickets closed",
}


class SuiteFile(StrictModel):
    """A list of ground-truth files and the thresholds their scores must meet."""

    videos: list[Path] = Field(description="Ground-truth files, relative to the suite file.")
    thresholds: Path | None = Field(None, description="Threshold file, relative to the suite file.")


class DetectionThresholds(StrictModel):
    """Detection gates: over all annotated classes, and per class."""

    min_map50: float | None = Field(None, description="Lowest mAP@0.5 over the annotated classes.")
    min_ap50: dict[str, float] = Field(
        default_factory=dict, description="Lowest AP@0.5 per class: {person: 0.40, bicycle: 0.95}."
    )


class ThresholdsFile(StrictModel):
    """Lowest (min_*) and highest (max_*) acceptable scores, per event type and for detection."""

    events: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="By event type: {min_recall: 1.0, max_false_closes: 0, ...}."
    )
    detection: DetectionThresholds = Field(default_factory=DetectionThresholds)


@dataclass
class Video:
    """One recording of the suite, read and checked."""

    name: str
    path: Path
    truth: GroundTruth
    boxes: FrameBoxes | None


@dataclass
class Suite:
    """Every video of a suite and its thresholds."""

    videos: list[Video]
    thresholds: ThresholdsFile | None = None


@dataclass
class SuiteResult:
    """Scores of a suite run, and the replays behind them."""

    replays: list[Replay]
    matches: list[VideoMatch]
    events: dict[str, Metrics]
    detection: dict[str, Any] | None
    videos: list[Video] = field(default_factory=list)

    @property
    def frames(self) -> int:
        return sum(r.frames for r in self.replays)

    @property
    def wall_seconds(self) -> float:
        return sum(r.wall_seconds for r in self.replays)


def load_suite(path: Path, thresholds: Path | None = None, overrides: list[Override] | None = None) -> Suite:
    """Read a suite folder or file, every ground-truth file in it (with ``overrides`` set), and its
    annotations."""
    if path.is_dir():
        files = sorted({f for pattern in TRUTH_PATTERNS for f in path.glob(pattern)})
        if not files:
            raise ConfigError([f"{path}: no ground-truth files (*.truth.yaml) in this folder"])
        listed = None
    else:
        listed = load_yaml(path, SuiteFile, "suite file")
        files = [resolve_path(f, path.resolve().parent) for f in listed.videos]
    if thresholds is None and listed is not None and listed.thresholds is not None:
        thresholds = resolve_path(listed.thresholds, path.resolve().parent)
    problems: list[str] = []
    videos: list[Video] = []
    names: set[str] = set()
    missed: dict[Path, dict[str, str]] = {}
    for file in files:
        try:
            video, missed[file] = _load_video(file, names, overrides or [])
            videos.append(video)
        except (ConfigError, AnnotationError) as exc:
            problems += exc.problems if isinstance(exc, ConfigError) else [str(exc)]
    if not problems:  # a file that failed to load may be the one an override was for
        problems += unused(overrides or [], missed)
    limits = None
    if thresholds is not None:
        try:
            limits = load_thresholds(thresholds)
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError(list(dict.fromkeys(problems)))  # a bad --set, once for all files
    return Suite(videos, limits)


def _load_video(file: Path, names: set[str], overrides: list[Override]) -> tuple[Video, dict[str, str]]:
    """One ground-truth file with ``overrides`` set, and the overrides that set nothing in it."""
    truth, missed = apply_overrides(load_truth(file), overrides, file)
    if not truth.video.is_file():
        raise ConfigError([f"{file}: video: no such file: {truth.video}"])
    name = camera_name(file)
    while name in names:  # two files of the same stem in different folders
        name += "_"
    names.add(name)
    boxes = None
    if truth.boxes is not None:
        if not truth.boxes.file.is_file():
            raise ConfigError([f"{file}: boxes.file: no such file: {truth.boxes.file}"])
        boxes = load_boxes(truth.boxes.file, truth.boxes.kind)
        if not video_rate(truth.video)[0]:
            raise ConfigError([f"{file}: boxes: the video does not say its frame rate: frames have no time"])
    return Video(name, file, truth, boxes), missed


def load_thresholds(path: Path) -> ThresholdsFile:
    """Read a threshold file; every key must name a metric and say min_ or max_."""
    limits = load_yaml(path, ThresholdsFile, "thresholds file")
    problems = []
    for event_type, keys in limits.events.items():
        for key in keys:
            metric = key.removeprefix("min_").removeprefix("max_")
            if key == metric or metric not in METRIC_HELP:
                problems.append(
                    f"{path}: events.{event_type}.{key}: not a threshold: "
                    f"use min_ or max_ and one of {', '.join(METRIC_HELP)}"
                )
    if problems:
        raise ConfigError(problems)
    return limits


def run_suite(suite: Suite, progress: Progress | None = None) -> SuiteResult:
    """Replay every video of the suite and score them."""
    progress = progress or Progress()
    detectors: dict[str, Detector] = {}
    replays, matches = [], []
    for video in suite.videos:
        key = video.truth.detector.model_dump_json()
        if key not in detectors:
            detectors[key] = Detector.from_config(video.truth.detector, cameras=1)  # one video at a time
        result = replay(video.name, video.truth, detectors[key], video.boxes, progress)
        replays.append(result)
        truth = video.truth
        closing = [truth.close_time(incident) for incident in truth.incidents]
        matching = match(result.tickets, truth.incidents, result.video_end, truth.tolerance, closing)
        matches.append(VideoMatch(result.tickets, truth.incidents, matching, truth.watched()))
    detection = _detection(suite.videos, replays)
    return SuiteResult(replays, matches, event_metrics(matches), detection, suite.videos)


def _detection(videos: list[Video], replays: list[Replay]) -> dict[str, Any] | None:
    """mAP@0.5 per annotated video, and over all their frames together."""
    per_video: dict[str, Any] = {}
    dets: list[FrameDetections] = []
    truths: list[FrameBoxes] = []
    for video, result in zip(videos, replays, strict=True):
        if video.boxes is None or result.detections is None:
            continue
        m, per_label = mean_average_precision(result.detections, video.boxes)
        on_frames = np.isin(video.boxes.frame, result.detections.frames) & ~video.boxes.ignore
        per_video[video.name] = {
            "map50": m,
            "ap50": per_label,
            "frames": len(result.detections.frames),
            "gt_boxes": int(np.count_nonzero(on_frames)),
        }
        # pooled: each video's frames in a range of their own, and only the classes it annotates
        offset = len(dets) << 32
        d = result.detections
        own = np.isin(d.label, video.boxes.labels)
        dets.append(
            FrameDetections(d.frames + offset, d.frame[own] + offset, d.xyxy[own], d.score[own], d.label[own])
        )
        truths.append(
            replace(video.boxes, frames=video.boxes.frames + offset, frame=video.boxes.frame + offset)
        )
    if not per_video:
        return None
    pooled_dets = FrameDetections(
        *(np.concatenate([getattr(d, f.name) for d in dets]) for f in fields(FrameDetections))
    )
    pooled_truth = FrameBoxes(
        *(
            np.concatenate([getattr(t, f.name) for t in truths])
            for f in fields(FrameBoxes)
            if f.name != "labels"
        ),
        labels=tuple(dict.fromkeys(label for t in truths for label in t.labels)),
    )
    m, per_label = mean_average_precision(pooled_dets, pooled_truth)
    return {"map50": m, "ap50": per_label, "videos": per_video}


def check_thresholds(result: SuiteResult, limits: ThresholdsFile) -> list[str]:
    """Every score outside its threshold, one line each; empty when all pass.

    A threshold on a score that has no value fails: "the ticket never closed" leaves
    time_to_close without a value, and must not pass a suite by saying nothing.
    """
    checks: list[tuple[str, float | int | None, str, float, str]] = []  # where, value, min/max, limit, why
    for event_type, keys in limits.events.items():
        metrics = result.events.get(event_type)
        for key, limit in keys.items():
            metric = key.removeprefix("min_").removeprefix("max_")
            value = None if metrics is None else metrics.get(metric)
            why = "no video watches this event type" if metrics is None else NO_VALUE.get(metric, "")
            checks.append((f"events.{event_type}.{metric}", value, key[:3], limit, why))
    det = result.detection
    no_boxes = "no annotated box on the processed frames"
    if limits.detection.min_map50 is not None:
        value = None if det is None else det["map50"]
        checks.append(("detection.map50", value, "min", limits.detection.min_map50, no_boxes))
    for label, limit in limits.detection.min_ap50.items():
        value = None if det is None else det["ap50"].get(label)
        checks.append((f"detection.ap50.{label}", value, "min", limit, f"no annotated {label} box"))
    failures = []
    for where, value, side, limit, why in checks:
        sign = ">=" if side == "min" else "<="
        if value is None:
            failures.append(f"{where}: no value ({why or 'nothing to score'}), needs {sign} {limit}")
        elif (side == "min" and value < limit) or (side == "max" and value > limit):
            failures.append(f"{where}: {value:.3f}, needs {sign} {limit}")
    return failures

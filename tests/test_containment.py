"""Containment on real video: cameras whose analysis (a test rule) or detection raises are marked ``error``,
rest with backoff and come back, while another camera's frames and events stay exactly what they are alone."""

from __future__ import annotations

import logging
from collections import defaultdict
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vision.config import Config, parse_config
from vision.detect.detector import Detector
from vision.ingest.health import CameraHealth, CameraState
from vision.pipeline import Pipeline, RunSummary
from vision.pipeline import analysis as pipeline_analysis
from vision.rules.crowd import CrowdRule
from vision.store import Store
from vision.types import Transition

from .conftest import SAMPLE

CROSSING = "[[0.0, 0.33], [0.55, 0.33], [0.95, 0.25], [1.0, 0.45], [1.0, 0.85], [0.55, 0.62], [0.0, 0.5]]"
CROWD = "{enter_count: 7, exit_count: 5, window: 2, min_duration: 2, close_after: 3}"
FAULTS = {"every50": 50, "always": 1}  # camera -> its analysis raises on every n-th frame
FRAMES = 200  # the 40 s clip at detect_fps 5
BLIND_WIDTH = 384  # the "blind" camera's frames are decoded this wide: the faulty detector knows them by it


class Fault:
    """The crowd rule of the faulty cameras raises on every n-th frame it is shown (all its instances,
    across restarts: the fault is in the rule, so a restart does not cure it)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: dict[str, int] = defaultdict(int)
        self.raised: dict[str, list[int]] = defaultdict(list)  # the call numbers that raised
        observe = CrowdRule.observe

        def faulty(rule: CrowdRule, *args: Any, **kwargs: Any) -> Any:
            every = FAULTS.get(rule.camera_id)
            if every is not None:
                self.calls[rule.camera_id] += 1
                if self.calls[rule.camera_id] % every == 0:
                    self.raised[rule.camera_id].append(self.calls[rule.camera_id])
                    raise RuntimeError(f"test rule: call {self.calls[rule.camera_id]}")
            return observe(rule, *args, **kwargs)

        monkeypatch.setattr(CrowdRule, "observe", faulty)


class DetectorFault:
    """The detector raises (a RuntimeError, as a GPU out of memory would) on every 50th frame of the blind
    camera: in the batch, and again when that frame is retried alone."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0  # blind frames detected
        self.failed: list[np.ndarray] = []
        detect = Detector.detect

        def faulty(detector: Detector, images: list[np.ndarray], *args: Any, **kwargs: Any) -> Any:
            for image in images:
                if image.shape[1] == BLIND_WIDTH and not self._failed(image):
                    self.calls += 1
                    if self.calls % 50 == 0:
                        self.failed.append(image)
            if any(self._failed(image) for image in images):
                raise RuntimeError("test detector: out of memory")
            return detect(detector, images, *args, **kwargs)

        monkeypatch.setattr(Detector, "detect", faulty)

    def _failed(self, image: np.ndarray) -> bool:
        return any(image is failed for failed in self.failed)


def config(cameras: list[str], data: Path) -> Config:
    text = "cameras:\n"
    for camera in cameras:
        text += f"  {camera}:\n    url: {SAMPLE}\n    detect_fps: 5\n"
        if camera == "blind":
            text += f"    decode: {{width: {BLIND_WIDTH}}}\n"
        text += f"    zones:\n      crossing:\n        polygon: {CROSSING}\n"
        text += f"        rules:\n          crowd: {CROWD}\n"
    text += "events: {close_after: 10, update_interval: 10}\n"
    text += "health: {restart_initial: 1, restart_max: 4}\n"
    return parse_config(text + f"storage: {{data_dir: {data}}}\n")


class Run:
    """One pipeline run with what each camera handed on: frames (pts, boxes), transitions, health."""

    def __init__(self, config: Config, detector: Any, data: Path) -> None:
        self.frames: dict[str, list[tuple[float, np.ndarray, np.ndarray]]] = defaultdict(list)
        self.transitions: dict[str, list[tuple[str, float, int]]] = defaultdict(list)
        self.states: dict[str, list[CameraState]] = defaultdict(list)
        self.tickets: dict[str, list[str]] = defaultdict(list)  # event id of each transition

        def on_health(health: CameraHealth) -> None:
            self.states[health.camera_id].append(health.state)

        store = Store(data, "test")
        pipeline = Pipeline(
            config,
            detector,
            store,
            on_transition=self._transition,
            on_detections=lambda f, d: self.frames[f.camera_id].append((f.pts, d.xyxy, d.class_id)),
            on_health=on_health,
        )
        try:
            self.summary: RunSummary = pipeline.run(max_seconds=300)
        finally:
            store.close()
        self.health = {k: w.reader.health() for k, w in pipeline.workers.items()}

    def _transition(self, t: Transition, payload: dict[str, Any]) -> None:
        self.transitions[t.event["camera"]].append((t.kind, t.pts, t.event["count"]))
        self.tickets[t.event["camera"]].append(t.event["event_id"])


def test_a_camera_whose_analysis_raises_never_stops_the_others(
    detector, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    alone = Run(config(["good"], tmp_path / "alone"), detector, tmp_path / "alone")
    fault, blind = Fault(monkeypatch), DetectorFault(monkeypatch)
    caplog.set_level(logging.INFO, "vision.pipeline")
    # the lanes' look at all their cameras made rare: a rest of 0.5-1 s of stream time takes far less wall
    # time than that here, so its error and recovery come and go between two looks, and are reported only
    # because a look reports the states its camera went through since the last one (HealthMonitor.passed)
    monkeypatch.setattr(pipeline_analysis, "WAIT", 3.0)
    mixed = Run(config(["good", *FAULTS, "blind"], tmp_path / "mixed"), detector, tmp_path / "mixed")

    # the good camera: every frame, box and transition exactly as when it ran alone
    assert len(alone.frames["good"]) == FRAMES
    assert [f[0] for f in mixed.frames["good"]] == [f[0] for f in alone.frames["good"]]
    for (_, boxes, classes), (_, alone_boxes, alone_classes) in zip(
        mixed.frames["good"], alone.frames["good"], strict=True
    ):
        np.testing.assert_array_equal(boxes, alone_boxes)
        np.testing.assert_array_equal(classes, alone_classes)
    assert alone.transitions["good"] and mixed.transitions["good"] == alone.transitions["good"]
    assert mixed.summary.cameras["good"].errors == 0
    assert mixed.health["good"].state is CameraState.ENDED

    # every 50th frame raises: each time it is in error, rests, and comes back with a fresh analysis
    stats, raised = mixed.summary.cameras["every50"], fault.raised["every50"]
    assert stats.errors == len(raised) == fault.calls["every50"] // 50 >= 3
    assert mixed.health["every50"].frames_out == FRAMES  # handed over by its reader, rested or not
    dropped = FRAMES - fault.calls["every50"]  # frames that arrived while it rested
    assert dropped >= 2 * stats.errors  # a rest is 0.5-1 s of stream time: 2 to 5 frames at 5 fps
    assert stats.frames_detected == len(mixed.frames["every50"]) == fault.calls["every50"] - stats.errors
    states = mixed.states["every50"]
    assert states.count(CameraState.ERROR) == stats.errors
    assert all(after is CameraState.LIVE for before, after in pairwise(states) if before is CameraState.ERROR)
    # 50 good frames (10 s) after each restart are more than restart_max (4 s): the backoff starts over,
    # so every rest stays within restart_initial (1 s): a gap of at most 0.2 + 1 + 0.2 s between frames
    pts = [f[0] for f in mixed.frames["every50"]]
    gaps = [b - a for a, b in pairwise(pts) if b - a > 0.3]
    assert len(gaps) == stats.errors and max(gaps) <= 1.4 + 1e-6
    assert mixed.health["every50"].errors == stats.errors
    # the crowd ticket it had open carries on through the restarts: one ticket, opened once before a
    # restart and never again, never duplicated (stream times: the rests drop frames, not seconds)
    opened = [t[1] for t in mixed.transitions["every50"] if t[0] == "open"]
    restarted = [b for a, b in pairwise(pts) if b - a > 0.3]  # the first frame after each rest
    assert len(opened) == 1 and any(at > opened[0] for at in restarted)
    assert len(set(mixed.tickets["every50"])) == 1

    # every frame raises: it stays in error, and its rests grow (0.5-1, 1-2, then 2-4 s) up to restart_max:
    # over the 39.8 s of the clip that is 10 to 22 failures (rests of at most 1 s would make it 33 or more)
    always = mixed.summary.cameras["always"]
    assert always.errors == len(fault.raised["always"]) == fault.calls["always"]
    assert 10 <= always.errors <= 22
    assert not mixed.frames["always"] and not mixed.transitions["always"]
    assert mixed.health["always"].state is CameraState.ERROR
    assert always.error == f"RuntimeError: test rule: call {always.errors}"

    # the detector fails on every 50th frame of the blind camera only: the same containment
    errors = mixed.summary.cameras["blind"].errors
    assert errors == len(blind.failed) == blind.calls // 50 >= 3
    assert (
        mixed.summary.cameras["blind"].frames_detected == len(mixed.frames["blind"]) == blind.calls - errors
    )
    assert mixed.summary.cameras["blind"].error is None  # it had come back when the clip ended
    assert mixed.health["blind"].last_error == "RuntimeError: test detector: out of memory"

    # each camera's failure is logged once with its traceback; the repeats (same place) are only counted
    for camera, count in (("every50", stats.errors), ("always", always.errors), ("blind", errors)):
        logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"camera {camera}:")]
        tracebacks = [m for m in logged if "Traceback" in m]
        assert len(tracebacks) == 1 and "RuntimeError: test " in tracebacks[0]
        assert sum("restarted" in m for m in logged) == count - (camera == "always")

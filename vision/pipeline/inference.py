"""Inference: the threads that gather the frames due from every camera, detect them in one call, and
hand each to its camera's analysis lane.

On the CPU there is one such thread per core (detector.parallel, vision/detect/threads.py), each
gathering in turn its share of the cameras, a camera's frames still detected in order; a frame its
camera's motion gate finds still is analysed, not detected (vision/scene/motion.py). Inference waits
for no analysis and no disk, only for a full lane (the cameras' backlog).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from vision.detect.detector import Detector
from vision.pipeline.lanes import END, Lane
from vision.pipeline.worker import CameraWorker
from vision.stats import PipelineStats
from vision.types import Detections, Frame

log = logging.getLogger(__name__)
WAIT = 0.2  # seconds to sleep when no camera has a frame ready (bounds how late stop() is noticed)


class Inference:
    """The inference threads' shared state: whose turn a gather starts at, how many threads still run."""

    def __init__(
        self,
        workers: dict[str, CameraWorker],
        lanes: list[Lane],
        lane_of: dict[str, Lane],
        detector: Detector,
        stats: PipelineStats,
        ready: threading.Event,
        stop: threading.Event,
        wait: float,
        on_inference: Callable[[float, int], None] | None = None,
    ) -> None:
        """``ready``: set by any reader with a frame ready (and by a stop); ``wait``: detector.batch_wait;
        ``on_inference``: hears the seconds of each detector call and the frames in its batch."""
        self.workers, self.lanes, self.lane_of = workers, lanes, lane_of
        self.detector, self.stats, self.on_inference = detector, stats, on_inference
        self._ready, self._stop, self.wait = ready, stop, wait
        self._gathering = threading.Lock()  # one inference thread gathers at a time
        self._ending = threading.Lock()
        self.running = 0  # inference threads still running (under _ending)
        self._turn = 0  # the camera the next gather starts at (after the last one a capped gather took)

    def run(self, max_seconds: float | None, start: float, share: int, wait: float) -> None:
        """An inference thread: rounds of gather (up to ``share`` frames due for the detector), detect,
        hand each frame to its camera's lane. Of several threads, each gathers in turn; a camera's next
        frame is gathered only once its last one is on its lane, so its frames stay in order whichever
        thread detects them. The last thread to end ends the lanes.

        Its rounds start at least ``wait`` seconds apart (:meth:`batch_wait`): the frames due in
        between come as one batch, and their analysis runs back to back on the lanes (an analysis
        after an idle gap runs cold, 1.4-1.9x its warm cost)."""
        gathered_at = float("-inf")  # when this thread's last round started (monotonic)
        try:
            while not self._stop.is_set():
                if wait:
                    if self._stop.wait(max(0.0, gathered_at + wait - time.monotonic())):
                        break
                    gathered_at = time.monotonic()
                if max_seconds is not None and time.perf_counter() - start >= max_seconds:
                    for worker in self.workers.values():
                        if worker.reader.realtime:
                            worker.reader.stop()
                with self._gathering:
                    gathered = self.gather(share)
                if gathered is None:
                    break
                batch = [(worker, frame) for worker, frame, due in gathered if due]
                found = iter(self.detect(batch) if batch else [])
                for worker, frame, due in gathered:  # each camera's frames stay in order on its lane
                    detections = next(found) if due else None  # None: the gate held it, not detected
                    if detections is not None or not due:
                        self.lane_of[worker.camera_id].frames.put((worker, frame, detections))
                    worker.inferring = False
                if gathered:
                    self._ready.set()  # their next frames may be waiting: wake a thread that gathers
        finally:
            with self._ending:
                self.running -= 1
                last = self.running == 0
            for lane in self.lanes if last else ():
                lane.frames.put(END)

    def batch_wait(self) -> float:
        """How far apart an inference thread's rounds start at least: ``detector.batch_wait`` when every
        camera is read in real time, else 0 (a file read as fast as possible is never made to wait)."""
        live = all(worker.reader.realtime for worker in self.workers.values())
        return self.wait if live else 0.0

    def gather(self, share: int) -> list[tuple[CameraWorker, Frame, bool]] | None:
        """One frame from every camera that has one (waiting for files read in order), and whether it
        is due for the detector; None when all ended. At ``share`` frames due it stops, and the next
        gather starts at the camera after (several inference threads share the cameras out evenly);
        a camera whose last frame another thread still detects is passed over, and so is a live
        camera whose reader has handed nothing over since its last take (:class:`Handed`).

        A file read as fast as possible is waited for, so its frames are never skipped; live
        cameras give what they have now. With nothing ready, sleep until some reader has a frame.
        A camera resting after a failure drops its frames (its lane restarts it at the first after);
        a frame its motion gate finds still is not detected, only analysed (vision/scene/motion.py).
        """
        self._ready.clear()
        batch: list[tuple[CameraWorker, Frame, bool]] = []
        running = False
        workers, due_frames = list(self.workers.values()), 0
        for step in range(len(workers)):
            worker = workers[(self._turn + step) % len(workers)]
            reader, handed = worker.reader, worker.handed if worker.reader.realtime else None
            if handed is not None and not handed.is_set():  # its hand-over is empty: nothing to take
                running = running or not (reader.done or reader.stopped)
                continue
            if reader.done or reader.stopped:
                continue
            running = True
            if worker.inferring:
                continue
            if handed is not None:  # before taking: a frame handed over after this sets it again
                handed.clear()
            frame = reader.take(None if not reader.realtime else 0.0)
            if frame is not None and not worker.resting(frame.pts):
                worker.inferring = True
                with worker.planning:  # its gate, like its planner, is reconfigured by its lane
                    due = worker.gate.due(frame.image, frame.pts, frame.motion, frame.picture)
                batch.append((worker, frame, due))
                due_frames += due
                if due_frames == share:
                    self._turn = (self._turn + step + 1) % len(workers)
                    break
        if not running:
            return None
        if not batch:
            self._ready.wait(WAIT)
        return batch

    def detect(self, batch: list[tuple[CameraWorker, Frame]]) -> list[Detections | None]:
        """One call for the batch; if a frame is bad, retry one by one so only that camera loses it.
        Each camera's planner learns from its frame's detections (outside its masks) here, before it
        plans the camera's next frame."""
        frames = [frame for _, frame in batch]
        regions = []
        for worker, frame in batch:
            with worker.planning:
                regions.append(worker.regions.boxes(frame.width, frame.height))
        try:
            started = time.perf_counter()
            results: list[Detections | None] = list(self.detector.detect([f.image for f in frames], regions))
            seconds = time.perf_counter() - started
            self.stats.detected([f.camera_id for f in frames], seconds)
            if self.on_inference:
                self.on_inference(seconds, len(batch))
        except Exception:
            results = []
            for (worker, frame), region in zip(batch, regions, strict=True):
                results.append(None)
                try:
                    results[-1] = self.detector.detect([frame.image], [region])[0]
                except ValueError as exc:
                    log.error("camera %s: frame at %.3fs skipped: %s", frame.camera_id, frame.pts, exc)
                except Exception as exc:  # anything else fails that camera only, like its unit
                    worker.fail(worker.unit.camera_time(frame.pts), exc)
        for i, ((worker, frame), detections) in enumerate(zip(batch, results, strict=True)):
            if detections is not None:
                try:
                    with worker.planning:
                        seen = worker.unit.analysis.scene.unmasked(frame, detections)
                        worker.regions.observe(seen, frame.width, frame.height)
                except Exception as exc:  # fails that camera only, like its unit
                    worker.fail(worker.unit.camera_time(frame.pts), exc)
                    results[i] = None
        return results

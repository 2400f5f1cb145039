"""Run figures: ``run --jsonl`` stats lines, the same numbers in /metrics, the summary's fps without
start-up, and health's lag measured once a frame's results are stored."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vision.api.metrics import Metrics
from vision.config import load_config
from vision.runtime import Runtime
from vision.stats import LAG_SAMPLES, PipelineStats

from .conftest import SAMPLE, cli


def write_config(folder: Path, realtime: bool, detect_fps: float = 5) -> Path:
    config = folder / "stats.yaml"
    config.write_text(
        f"cameras:\n  plaza:\n    url: {SAMPLE}\n    detect_fps: {detect_fps}\n"
        f"    realtime: {str(realtime).lower()}\n"
        f"storage:\n  data_dir: {folder / 'data'}\n"
    )
    return config


def test_stats_lines_every_second_add_up_to_the_summary(tmp_path: Path) -> None:
    """The plaza clip is 10 fps; read in real time at detect_fps 2 for 4 s of wall time."""
    config = write_config(tmp_path, realtime=True, detect_fps=2)
    run = cli("run", config, "--jsonl", "--stats-every", "1", "--max-seconds", "4", timeout=120)
    assert run.returncode == 0, run.stderr
    records = [json.loads(line) for line in run.stdout.splitlines()]
    stats = [r for r in records if r["kind"] == "stats"]
    summary = records[-1]
    assert summary["kind"] == "summary"
    assert len(stats) >= 4  # one a second, and one for the tail at the end
    held = summary["cameras"]["plaza"]["frames_held"]  # by its motion gate: analysed, not detected
    assert sum(s["cameras"]["plaza"]["frames_analysed"] for s in stats) == summary["frames_detected"] + held
    assert summary["frames_detected"] >= 5
    # whole seconds of a live camera: not the first (start-up) nor the tail
    full = [s for s in stats[1:-1] if 0.9 <= s["interval"] <= 1.5]
    assert len(full) >= 2
    seconds = sum(s["interval"] for s in full)
    lines = [s["cameras"]["plaza"] for s in full]
    fps_in = sum(line["fps_in"] * s["interval"] for s, line in zip(full, lines, strict=True)) / seconds
    fps_out = sum(line["frames_analysed"] for line in lines) / seconds
    assert 8.5 <= fps_in <= 11.5 and 1.0 <= fps_out <= 2.6, (fps_in, fps_out)  # the clip's 10 fps; 2 out
    working = [line for line in lines if line["frames_analysed"]]
    for line in working:
        assert line["state"] in ("live", "ended")
        assert line["detector_ms"] > 1.0 and line["analysis_ms"] > 0.0
    # a frame's lag is taken when its results are committed, a moment after its analysis: a window's two
    # frames may both be committed in the next (a stalled writer on a loaded machine), once at most here
    lagged = [line for line in working if line["lag_p50"] is not None]
    assert len(lagged) >= len(working) - 1, lines
    for line in lagged:
        assert 0.0 < line["lag_p50"] <= line["lag_p95"]
        # a frame's lag covers its detection and analysis at least
        assert line["lag_p95"] >= (line["detector_ms"] + line["analysis_ms"]) / 1000 * 0.5
    assert sum(s["detector_calls"] for s in stats) == summary["frames_detected"]  # one camera: a call each
    health = summary["cameras"]["plaza"]["health"]
    for key, total in (("dropped", "frames_dropped"), ("skipped", "frames_skipped")):
        assert sum(s["cameras"]["plaza"][key] for s in stats) == health[total]
    assert 1.5 <= summary["detect_fps"] <= 2.7  # from the first analysed frame on: about detect_fps
    assert health["lag"] is not None


def test_no_stats_lines_when_asked_for_none(tmp_path: Path) -> None:
    config = write_config(tmp_path, realtime=True)
    run = cli("run", config, "--jsonl", "--stats-every", "0", "--max-seconds", "1.5", timeout=120)
    assert run.returncode == 0, run.stderr
    kinds = {json.loads(line)["kind"] for line in run.stdout.splitlines()}
    assert "stats" not in kinds and "summary" in kinds


def scrape(text: str) -> dict[str, float]:
    return {line.rpartition(" ")[0]: float(line.split()[-1]) for line in text.splitlines() if line[0] != "#"}


def test_metrics_carry_the_same_figures(tmp_path: Path) -> None:
    config = write_config(tmp_path, realtime=False, detect_fps=1)  # the whole clip, fast: 40 frames
    runtime = Runtime.build(load_config(config), config)
    try:
        summary = runtime.pipeline.run()
        metrics = Metrics()
        metrics.watch(runtime)
        values = scrape(metrics.text().decode())
    finally:
        runtime.close()
    frames = summary.cameras["plaza"].frames_detected
    assert frames == 40
    cam = '{camera="plaza"}'
    assert values[f"street_vision_camera_frames_analysed_total{cam}"] == frames
    assert values[f"street_vision_camera_lag_seconds_count{cam}"] == frames
    assert values['street_vision_camera_lag_seconds_bucket{camera="plaza",le="+Inf"}'] == frames
    buckets = [v for k, v in values.items() if k.startswith("street_vision_camera_lag_seconds_bucket")]
    assert buckets == sorted(buckets)  # cumulative
    assert values[f"street_vision_camera_detector_seconds_total{cam}"] > 0.04  # 40 SSD calls
    assert values[f"street_vision_camera_analysis_seconds_total{cam}"] > 0
    p50, p95 = (
        values[f"street_vision_camera_lag_p50_seconds{cam}"],
        values[f"street_vision_camera_lag_p95_seconds{cam}"],
    )
    mean = values[f"street_vision_camera_lag_seconds_sum{cam}"] / frames
    assert 0 < p50 <= p95 and p50 <= 2 * mean
    # start-up (restore, opening the file, the detector's first call) is not in the summary's rate
    assert summary.detect_fps is not None and summary.detect_fps > frames / summary.wall_seconds


def test_health_lag_is_measured_once_the_results_are_stored(tmp_path: Path) -> None:
    """Behind the live edge when the last frame's results were stored: its detection included."""
    config = write_config(tmp_path, realtime=True, detect_fps=2)
    runtime = Runtime.build(load_config(config), config)
    try:
        runtime.pipeline.run(max_seconds=2.5)
    finally:
        runtime.close()
    counters = runtime.pipeline.stats.cameras["plaza"]
    (last,) = counters.recent_lags(1)  # receipt of the last frame to its results stored
    assert counters.detector_seconds > 0 and last > counters.detector_seconds / counters.analysed / 4
    lag = runtime.pipeline.health()["plaza"].lag
    assert lag is not None and lag >= last - 0.002  # not when it was taken, before the detector


def test_lag_ring_keeps_the_latest_samples_in_order() -> None:
    stats = PipelineStats(["a"])
    counters = stats.cameras["a"]
    for i in range(LAG_SAMPLES + 300):
        counters.lags[counters.n_lags % LAG_SAMPLES] = i
        counters.n_lags += 1
    assert counters.recent_lags(5).tolist() == [float(LAG_SAMPLES + 295 + i) for i in range(5)]
    assert np.array_equal(counters.recent_lags(10**6), np.arange(300, LAG_SAMPLES + 300, dtype=np.float64))

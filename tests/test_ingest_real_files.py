"""Files as phones, recorders and editors write them, through `street-vision run` and `eval`.

Each clip is made here by the ffmpeg CLI: an audio track that runs past the video, a
portrait clip stored sideways with a display matrix, variable frame rate, and timestamps
that start at 10 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from vision.config import CameraConfig, DecodeConfig, parse_config
from vision.ingest.decoder import VideoDecoder
from vision.ingest.pictures import luma_plane, quarter_turns
from vision.pipeline import Pipeline
from vision.scene.motion import bgr_picture, luma_picture
from vision.secrets import SecretUrl
from vision.store import Store

from .conftest import ROOT, SAMPLE

PERSON = ROOT / "sample_videos" / "person.jpg"
PORTRAIT = (slice(None), slice(100, 340))  # a 240x424 portrait crop of person.jpg around the person
PERSON_BOX = [82.0, 104.0, 168.0, 380.0]  # the person in that crop (the detector's box on the photo)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vision.cli", *args], capture_output=True, text=True, timeout=300, cwd=ROOT
    )


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", *args, "-y"], check=True, timeout=120)


def run_jsonl(tmp_path: Path, clip: Path, detect_fps: float) -> list[dict]:
    """`street-vision run --jsonl --detections` on one file camera; its lines."""
    config = tmp_path / f"{clip.stem}.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "cameras": {"cam": {"url": str(clip), "detect_fps": detect_fps}},
                "storage": {"data_dir": str(tmp_path / f"data-{clip.stem}")},
            }
        )
    )
    result = cli("run", str(config), "--jsonl", "--detections")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def truth_file(folder: Path, name: str, clip: Path, detect_fps: float, **more: object) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.truth.yaml"
    path.write_text(yaml.safe_dump({"video": str(clip), "camera": {"detect_fps": detect_fps}, **more}))
    return path


def test_an_audio_track_longer_than_the_video_ends_the_run_and_the_eval(tmp_path: Path) -> None:
    video = tmp_path / "video.mp4"
    clip = tmp_path / "long_audio.mp4"
    ffmpeg("-i", str(SAMPLE), "-t", "3", "-pix_fmt", "yuv420p", str(video))
    ffmpeg(
        *("-i", str(video), "-f", "lavfi", "-i", "sine=frequency=440:duration=6"),
        *("-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", str(clip)),
    )
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,duration", "-of", "json", str(clip)],
        capture_output=True,
        text=True,
        check=True,
    )
    durations = {s["codec_type"]: float(s["duration"]) for s in json.loads(probe.stdout)["streams"]}
    assert durations["audio"] > durations["video"] + 2  # the audio runs on 3 s after the last frame

    summary = run_jsonl(tmp_path, clip, 5)[-1]
    camera = summary["cameras"]["cam"]
    assert camera["error"] is None and camera["health"]["state"] == "ended"
    assert camera["frames_decoded"] == 30 and camera["frames_detected"] == 15  # 3 s at 10 fps, sampled at 5

    suite = tmp_path / "suite"
    truth_file(suite, "long_audio", clip, 5)
    result = cli("eval", str(suite), "--out", str(tmp_path / "report"))
    assert result.returncode == 0, result.stdout + result.stderr
    (record,) = json.loads((tmp_path / "report" / "results.json").read_text())["videos"]
    assert record["error"] is None and record["frames"] == 15


def rotated_clip(tmp_path: Path) -> Path:
    """A portrait photo stored as a landscape picture turned a quarter clockwise, plus the display matrix."""
    still = tmp_path / "portrait.png"
    cv2.imwrite(str(still), cv2.imread(str(PERSON))[PORTRAIT])
    sideways, clip = tmp_path / "sideways.mp4", tmp_path / "phone.mp4"
    ffmpeg("-loop", "1", "-i", str(still), "-vf", "transpose=clock", "-t", "2", "-r", "10", str(sideways))
    # ffmpeg 6 and later say it with -display_rotation (counter-clockwise degrees); older ones with the tag
    help_text = subprocess.run(
        ["ffmpeg", "-hide_banner", "-h", "full"], capture_output=True, text=True
    ).stdout
    if "display_rotation" in help_text:
        ffmpeg("-display_rotation", "90", "-i", str(sideways), "-c", "copy", str(clip))
    else:
        ffmpeg("-i", str(sideways), "-c", "copy", "-metadata:s:v", "rotate=90", str(clip))
    return clip


def test_a_portrait_phone_clip_is_analysed_upright(tmp_path: Path) -> None:
    clip = rotated_clip(tmp_path)
    # the pixels the pipeline sees are what ffmpeg itself shows (its autorotate), not the stored ones
    shown = tmp_path / "shown.png"
    ffmpeg("-i", str(clip), "-frames:v", "1", str(shown))
    reference = cv2.imread(str(shown))
    camera = CameraConfig.model_validate({"url": str(clip)})
    with VideoDecoder("phone", camera.url, camera.decode) as decoder:
        frame, _ = next(decoder.frames())
        assert frame.width == 424 and frame.height == 240  # stored sideways
        image = decoder.image(frame)
        # the motion gate's picture, made of the stored luma plane, is turned upright too
        picture = luma_picture(*luma_plane(frame), quarter_turns(frame.rotation), 160)
    assert image.shape == reference.shape == (424, 240, 3)
    assert picture.shape == bgr_picture(image, 160).shape == (212, 120)
    assert np.abs(picture.astype(int) - bgr_picture(image, 160)).mean() < 1.5
    assert np.abs(image.astype(int) - reference).mean() < 1.0

    lines = run_jsonl(tmp_path, clip, 2)
    frames = [line for line in lines if line["kind"] == "detections"]
    assert len(frames) == 4
    for line in frames:  # the person stands: a tall box inside the 240 px wide portrait frame
        (person,) = [d for d in line["detections"] if d["label"] == "person"]
        x1, y1, x2, y2 = person["box"]
        assert person["score"] > 0.9 and x2 <= 240 and (y2 - y1) > 2.5 * (x2 - x1)
        assert np.allclose(person["box"], PERSON_BOX, atol=8)
    # decode.width is the upright picture's width
    small = CameraConfig.model_validate({"url": str(clip), "decode": {"width": 120}})
    with VideoDecoder("phone", small.url, small.decode) as decoder:
        assert decoder.image(next(decoder.frames())[0]).shape == (212, 120, 3)


def test_variable_frame_rate_keeps_each_frame_at_its_own_time(tmp_path: Path) -> None:
    """20 frames 0.1 s apart with a person, then 10 empty ones 1 s apart; boxes numbered by frame."""
    stills = tmp_path / "stills"
    stills.mkdir()
    person = cv2.imread(str(PERSON))[PORTRAIT]
    for i in range(30):
        cv2.imwrite(str(stills / f"f{i:02d}.png"), person if i < 20 else np.full_like(person, 128))
    clip = tmp_path / "vfr.mp4"
    ffmpeg(
        *("-framerate", "10", "-i", str(stills / "f%02d.png")),
        *("-vf", "setpts='if(lt(N,20),N*0.1,2+(N-20))/TB'", "-fps_mode", "vfr"),
        *("-video_track_timescale", "1000", "-pix_fmt", "yuv420p", str(clip)),
    )
    expected = [round(0.1 * i, 3) for i in range(20)] + [float(s) for s in range(2, 12)]

    lines = run_jsonl(tmp_path, clip, 10)
    assert [line["pts"] for line in lines if line["kind"] == "detections"] == pytest.approx(expected)

    # per-frame truth by frame number (as CVAT and COCO number frames): found only if frame N is at
    # its own time (the average rate, 30 frames in 11 s, would put frame 10 at 4 s)
    coco = {
        "images": [
            {"id": i + 1, "file_name": f"frame_{i:06d}.png", "width": 240, "height": 424} for i in range(30)
        ],
        "annotations": [
            {
                "id": i + 1,
                "image_id": i + 1,
                "category_id": 1,
                "bbox": [82, 104, 86, 276],
                "area": 86 * 276,
                "iscrowd": 0,
            }
            for i in range(20)
        ],
        "categories": [{"id": 1, "name": "person"}],
    }
    (tmp_path / "vfr.boxes.json").write_text(json.dumps(coco))
    suite = tmp_path / "suite"
    truth_file(suite, "vfr", clip, 10, boxes={"file": str(tmp_path / "vfr.boxes.json")})
    result = cli("eval", str(suite), "--out", str(tmp_path / "report"))
    assert result.returncode == 0, result.stdout + result.stderr
    detection = json.loads((tmp_path / "report" / "results.json").read_text())["detection"]
    assert detection["videos"]["vfr"]["frames"] == 30 and detection["videos"]["vfr"]["gt_boxes"] == 20
    assert detection["ap50"]["person"] == pytest.approx(1.0)


def test_timestamps_that_start_at_10_s_are_seconds_from_the_first_frame(tmp_path: Path) -> None:
    """The sample clip and a copy whose timestamps start at 10 s give the same tickets and boxes."""
    clip = tmp_path / "offset.mp4"
    ffmpeg("-i", str(SAMPLE), "-c", "copy", "-output_ts_offset", "10", str(clip))
    first = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=start_time", "-of", "csv=p=0", str(clip)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert float(first.stdout) == pytest.approx(10.0)
    truth = yaml.safe_load((ROOT / "sample_videos" / "plaza.truth.yaml").read_text())
    truth["boxes"]["file"] = str(ROOT / "sample_videos" / truth["boxes"]["file"])
    suite = tmp_path / "suite"
    suite.mkdir()
    for name, video in [("original", SAMPLE), ("offset", clip)]:
        (suite / f"{name}.truth.yaml").write_text(yaml.safe_dump({**truth, "video": str(video)}))
    result = cli("eval", str(suite), "--out", str(tmp_path / "report"))
    assert result.returncode == 0, result.stdout + result.stderr
    record = json.loads((tmp_path / "report" / "results.json").read_text())
    videos = {v["name"]: v for v in record["videos"]}
    offset, original = videos["offset"], videos["original"]
    assert offset["frames"] == original["frames"] == 200 and offset["video_end"] == pytest.approx(39.8)
    keys = ("type", "zone", "opened_at", "resolved_at", "role")
    assert [[t[k] for k in keys] for t in offset["tickets"]] == [
        [t[k] for k in keys] for t in original["tickets"]
    ]
    crowd = [t for t in offset["tickets"] if t["type"] == "crowd"]
    assert len(crowd) == 1 and crowd[0]["role"] == "primary"  # found at its annotated time, 12 s
    per_video = record["detection"]["videos"]
    assert per_video["offset"] == per_video["original"] and per_video["offset"]["gt_boxes"] == 65


def test_a_keyframe_comes_out_of_the_decoder_before_the_next_keyframe_arrives(tmp_path: Path) -> None:
    """Keyframes-only cameras: with frame threads FFmpeg holds each picture until the next packets
    are in, which for a keyframes-only decoder is the next keyframe, a whole GOP (5 s here) late.
    Counted without a clock: the non-key packets skipped before each keyframe comes out."""
    clip = tmp_path / "gop50.mp4"
    gop = ("-g", "50", "-keyint_min", "50", "-sc_threshold", "0", "-bf", "0")
    ffmpeg("-i", str(SAMPLE), "-t", "12", "-an", "-c:v", "libx264", *gop, str(clip))
    skipped: list[float] = []
    camera = CameraConfig.model_validate({"url": str(clip), "decode": {"keyframes_only": True, "threads": 2}})
    decoder = VideoDecoder("cam", camera.source, camera.decode, heartbeat=skipped.append)
    with decoder:
        behind = [len(skipped) for _ in decoder.frames()]
    assert behind == [0, 49, 98], behind  # each keyframe out as soon as its own packet is decoded


def test_a_keyframe_of_a_stream_with_b_frames_comes_out_before_the_next_keyframe() -> None:
    """The sample has B-frames (two of reordering): a keyframes-only decoder held each keyframe until
    two more keyframes were in, 4 s late at its GOP of 2 s. Counted without a clock as above: the
    sample's 19 non-key packets between keyframes skipped before each keyframe comes out."""
    skipped: list[float] = []
    decode = DecodeConfig(keyframes_only=True)
    with VideoDecoder("cam", SecretUrl(str(SAMPLE)), decode, heartbeat=skipped.append) as decoder:
        behind = [len(skipped) for _, (_, pts) in zip(range(4), decoder.frames(), strict=False)]
        assert behind == [0, 19, 38, 57], behind
        pts = [pts for _, pts in decoder.frames()]
    assert pts == pytest.approx([2.0 * k for k in range(4, 20)]), pts  # the rest, each once, in order


def threads_started(decode: DecodeConfig, cameras: int) -> int:
    """OS threads a decoder of the sample adds to this process once it has decoded a frame."""
    before = len(os.listdir("/proc/self/task"))
    with VideoDecoder("cam", SecretUrl(str(SAMPLE)), decode, cameras=cameras) as decoder:
        next(decoder.frames())
        return len(os.listdir("/proc/self/task")) - before


def test_decoders_take_one_thread_each_when_cameras_outnumber_the_cores(detector, tmp_path: Path) -> None:
    """FFmpeg's frame threads cost CPU in all; with more cameras than cores, which keep every core
    busy between them, each decoder gets one thread unless decode.threads says otherwise."""
    cores = len(os.sched_getaffinity(0))
    assert threads_started(DecodeConfig(), cameras=cores + 1) == 0
    assert threads_started(DecodeConfig(threads=2), cameras=cores + 1) >= 1  # as configured
    if cores > 1:  # FFmpeg's own choice: a thread per core
        assert threads_started(DecodeConfig(), cameras=cores) >= 1
    entries = "".join(f"  c{i}: {{url: {SAMPLE}}}\n" for i in range(cores + 1))
    config = parse_config(f"cameras:\n{entries}  spare: {{url: {SAMPLE}, enabled: false}}\n")
    pipeline = Pipeline(config, detector, Store(tmp_path, "test"))
    assert {w.reader.cameras for w in pipeline.workers.values()} == {cores + 1}  # the enabled ones

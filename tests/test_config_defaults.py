"""camera_defaults and groups: shared settings merged under each camera's own, errors at the line they
were written, and ``check`` showing what each camera ends up with."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from vision.config import ConfigError, load_config, parse_config

from .conftest import ROOT, cli

SHARED = """\
camera_defaults:
  detect_fps: 2
  stream: {transport: udp, open_timeout: 5}
  decode: {keyframes_only: true}
groups:
  night:
    detect_fps: 4
    stream: {stall_timeout: 20}
cameras:
  a:
    url: rtsp://viewer:hunter2-pw@127.0.0.1/a
    stream: {open_timeout: 7}
  b:
    url: rtsp://127.0.0.1/b
    group: night
  c:
    url: rtsp://127.0.0.1/c
    group: night
    detect_fps: 1
    decode: {threads: 1}
  d:
    url: rtsp://127.0.0.1/d
    group: routing-only
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "test.yaml", {})
    return info.value.problems


def test_camera_over_group_over_defaults_mappings_merged_key_by_key() -> None:
    cameras = parse_config(SHARED, "test.yaml", {}).cameras
    a, b, c, d = (cameras[k] for k in "abcd")
    assert (a.detect_fps, b.detect_fps, c.detect_fps, d.detect_fps) == (2, 4, 1, 2)
    assert (a.stream.transport, a.stream.open_timeout, a.stream.stall_timeout) == ("udp", 7, 5)
    assert (b.stream.transport, b.stream.open_timeout, b.stream.stall_timeout) == ("udp", 5, 20)
    assert c.decode.keyframes_only and c.decode.threads == 1 and b.decode.threads is None
    assert (a.group, b.group, d.group) == (None, "night", "routing-only")  # a group without settings names
    masks = "camera_defaults:\n  masks: [[[0, 0], [0.1, 0], [0, 0.1]]]\ncameras:\n  a:\n    url: a.mp4\n"
    own = parse_config(masks + "    masks: [[[1, 1], [0.9, 1], [1, 0.9]]]\n", "t.yaml", {}).cameras["a"]
    assert own.masks == [[(1, 1), (0.9, 1), (1, 0.9)]]  # a list is replaced whole, not appended to
    assert parse_config(masks, "t.yaml", {}).cameras["a"].masks == [[(0, 0), (0.1, 0), (0, 0.1)]]
    plain = parse_config("cameras:\n  a: {url: a.mp4}\n", "t.yaml", {}).cameras["a"]
    assert plain.detect_fps == 5 and plain.stream.transport == "tcp"  # built-in defaults untouched


def test_a_bad_default_names_its_own_line_and_the_cameras_it_applied_to() -> None:
    assert problems(SHARED.replace("detect_fps: 4", "detect_fps: 99")) == [
        "groups.night.detect_fps: Input should be less than or equal to 60 (line 7; applied to camera b)"
    ]  # c sets its own detect_fps: the group's value never reached it
    assert problems(SHARED.replace("open_timeout: 5}", "open_timeout: -1}")) == [
        "camera_defaults.stream.open_timeout: Input should be greater than 0 "
        "(line 3; applied to cameras b, c, d)"
    ]  # a sets its own open_timeout
    many = "camera_defaults:\n  detect_fps: 0\ncameras:\n" + "".join(
        f"  c{i}: {{url: x.mp4}}\n" for i in range(8)
    )
    assert problems(many) == [
        "camera_defaults.detect_fps: Input should be greater than 0 "
        "(line 2; applied to cameras c0, c1, c2, c3, c4 and 3 more)"
    ]
    nested = SHARED.replace("stream: {stall_timeout: 20}", "stream: {stall_timout: 20}")
    assert problems(nested)[0].startswith(
        "groups.night.stream.stall_timout: unknown key (allowed: max_lag, open_timeout,"
    )
    assert problems(nested)[0].endswith("did you mean 'stall_timeout'? (line 8; applied to cameras b, c)")


def test_per_camera_keys_and_unknown_keys_are_refused_in_defaults() -> None:
    found = problems(SHARED.replace("  detect_fps: 2\n", "  url: rtsp://x/y\n  detect_fsp: 2\n", 1))
    assert len(found) == 2
    assert found[0].startswith("camera_defaults.url: unknown key (allowed: calibration, decode, detect_fps,")
    assert found[0].endswith("(line 2)")
    assert "did you mean 'detect_fps'? (line 3)" in found[1]
    zones = problems("groups:\n  g:\n    zones: {}\ncameras:\n  a: {url: a.mp4, group: g}\n")
    assert zones[0].startswith("groups.g.zones: unknown key") and zones[0].endswith("(line 3)")


def test_env_references_in_defaults_are_refused_where_written() -> None:
    found = problems(SHARED.replace("detect_fps: 2", "detect_fps: ${FPS}"))
    assert len(found) == 1
    assert found[0].startswith("camera_defaults.detect_fps: environment references (${...}) are only allowed")
    assert found[0].endswith("(line 2)")


def test_a_cameras_own_mistake_still_names_its_own_line() -> None:
    assert problems(SHARED.replace("detect_fps: 1", "detect_fps: fast")) == [
        "cameras.c.detect_fps: Input should be a valid number, unable to parse string as a number (line 19)"
    ]


def test_sample_config_of_many_short_entries() -> None:
    config = load_config(ROOT / "configs" / "many-cameras.yaml")
    cameras = config.cameras
    assert len(cameras) == 10 and all(
        c.realtime and c.loop and c.decode.threads == 1 for c in cameras.values()
    )
    assert cameras["walkway-1"].decode.keyframes_only and cameras["walkway-1"].detect_fps == 0.5
    assert cameras["plaza-north"].detect_fps == 5 and cameras["plaza-east"].detect_fps == 3
    assert cameras["spare"].detect_fps == 2 and not cameras["spare"].decode.keyframes_only
    assert list(cameras["plaza-north"].zones) == ["crossing"] and not cameras["plaza-south"].zones
    assert (
        cameras["plaza-north"].stream.stall_timeout == 10 and cameras["plaza-north"].stream.transport == "tcp"
    )


def test_check_prints_shared_settings_and_one_cameras_effective_settings(tmp_path: Path) -> None:
    ok = cli("check", ROOT / "configs" / "many-cameras.yaml", timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "  camera_defaults: decode, detect_fps, loop, realtime, stream (every camera" in ok.stdout
    assert (
        "  group static: decode, detect_fps; 6 camera(s): walkway-1, walkway-2, walkway-3, racks-1,"
        in ok.stdout
    )
    assert "  group plazas: detect_fps; 3 camera(s): plaza-north, plaza-south, plaza-east\n" in ok.stdout
    config = tmp_path / "shared.yaml"
    config.write_text(SHARED)
    shown = cli("check", config, "--show", "a", timeout=60)
    assert shown.returncode == 0, shown.stderr
    a = yaml.safe_load(shown.stdout)["a"]
    assert a["url"] == "rtsp://viewer:***@127.0.0.1/a" and "hunter2" not in shown.stdout
    assert a["detect_fps"] == 2 and a["stream"]["transport"] == "udp" and a["stream"]["open_timeout"] == 7
    assert a["decode"] == {"threads": None, "width": None, "keyframes_only": True}
    assert "  group routing-only: no settings; 1 camera(s): d" in cli("check", config, timeout=60).stdout
    missing = cli("check", config, "--show", "z", timeout=60)
    assert (
        missing.returncode == 2
        and missing.stderr == f"error: {config}: no camera 'z' (cameras: a, b, c, d)\n"
    )
    config.write_text(SHARED.replace("detect_fps: 4", "detect_fps: 99"))
    bad = cli("check", config, timeout=60)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr == (
        f"error: {config}: groups.night.detect_fps: Input should be less than or equal to 60 "
        "(line 7; applied to camera b)\n"
    )


def test_the_reference_example_means_what_it_says() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    section = text.split("## Shared camera settings", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    cameras = parse_config(example, "example.yaml", {}).cameras
    assert (cameras["a"].detect_fps, cameras["a"].stream.stall_timeout) == (2, 5)
    b = cameras["b"]
    assert (b.detect_fps, b.stream.transport, b.stream.open_timeout, b.stream.stall_timeout) == (
        4,
        "udp",
        5,
        20,
    )
    assert (cameras["c"].stream.open_timeout, cameras["c"].stream.stall_timeout) == (7, 20)
    (problem,) = problems(example.replace("detect_fps: 4", "detect_fps: 99"))
    assert f"`{problem}`" in " ".join(section.split())

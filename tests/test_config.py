"""Config parsing: valid files load, and each kind of mistake gets one line naming its key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from vision.config import ConfigError, load_config, parse_config

from .conftest import ROOT

GOOD = """\
cameras:
  riverbank:
    url: rtsp://admin:${CAM_PW}@127.0.0.1:8554/bank
    detect_fps: 2
    zones:
      no_fishing:
        polygon: [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]]
        rules:
          crowd: {enter_count: 5}
dispatch:
  webhook_url: https://tickets.example/hook
  secret: ${HOOK_SECRET}
"""
ENV = {"CAM_PW": "s3cr3t-pw", "HOOK_SECRET": "hook-key-123"}


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "test.yaml", env if env is not None else ENV)
    return info.value.problems


def test_valid_config_loads_with_defaults() -> None:
    config = parse_config(GOOD, env=ENV)
    cam = config.cameras["riverbank"]
    assert cam.url.get_secret_value() == "rtsp://admin:s3cr3t-pw@127.0.0.1:8554/bank"
    assert cam.detect_fps == 2
    crowd = cam.zones["no_fishing"].rules.crowd
    assert (crowd.enter_count, crowd.exit_count, crowd.min_duration) == (5, 3, 5.0)
    assert config.detector.model == "default" and config.detector.min_score == 0.4
    assert config.dispatch.secret.get_secret_value() == "hook-key-123"


def test_demo_config_is_valid() -> None:
    config = load_config(ROOT / "configs" / "demo.yaml")
    assert config.cameras["plaza"].url.get_secret_value() == str(ROOT / "sample_videos" / "plaza.mp4")
    assert config.storage.data_dir == ROOT / "data"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "polygon: [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]]",
            "polygon: [[0.1, 0.1], [0.9, 0.1]]",
            "cameras.riverbank.zones.no_fishing.polygon: needs at least 3 points (line 7)",
        ),
        (
            "polygon: [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]]",
            "polygon: [[0.1, 0.1], [1.5, 0.1], [0.9, 0.9]]",
            "cameras.riverbank.zones.no_fishing.polygon: point 1 (1.5, 0.1) is outside the image: "
            "use normalized 0..1 coordinates (line 7)",
        ),
        (
            "polygon: [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]]",
            "polygon: [[0.1, 0.1], [0.5, 0.5], [0.9, 0.9]]",
            "cameras.riverbank.zones.no_fishing.polygon: has no area: its points are on one line (line 7)",
        ),
        (
            "detect_fps: 2",
            "detect_fps: 0",
            "cameras.riverbank.detect_fps: Input should be greater than 0 (line 4)",
        ),
        (
            "crowd: {enter_count: 5}",
            "crowd: {enter_count: 5, exit_count: 6}",
            "cameras.riverbank.zones.no_fishing.rules.crowd: exit_count (6) must be below enter_count (5) "
            "(line 9)",
        ),
        (
            "crowd: {enter_count: 5}",
            "crwod: {enter_count: 5}",
            "cameras.riverbank.zones.no_fishing.rules.crwod: unknown key "
            "(allowed: bike_parking, crowd, fishing, litter); "
            "did you mean 'crowd'? (line 9)",
        ),
        (
            "webhook_url: https://tickets.example/hook",
            "webhook_url: ftp://tickets.example/hook",
            "dispatch.webhook_url: must be an http:// or https:// URL (line 11)",
        ),
        (
            "  secret: ${HOOK_SECRET}\n",
            "",
            "dispatch.secret: required when webhook_url is set: every request is signed with it (line 10)",
        ),
        (
            "  riverbank:",
            "  river bank:",
            "cameras.river bank: 'river bank' is not a valid name: use letters, digits, '_' and '-' "
            "(at most 64) (line 2)",
        ),
    ],
)
def test_each_mistake_is_one_line_naming_its_path(old: str, new: str, expected: str) -> None:
    assert old in GOOD
    assert problems(GOOD.replace(old, new)) == [f"{expected}"]


def test_unknown_key_lists_allowed_keys_and_suggests_one() -> None:
    (problem,) = problems(GOOD.replace("detect_fps: 2", "detect_fsp: 2"))
    head, allowed = problem.split(" (allowed: ")
    assert head == "cameras.riverbank.detect_fsp: unknown key"
    assert {"url", "detect_fps", "zones", "masks"} <= set(allowed.split(")")[0].split(", "))
    assert problem.endswith("; did you mean 'detect_fps'? (line 4)")


def test_missing_env_var_names_key_and_variable() -> None:
    assert problems(GOOD, {"CAM_PW": "x"}) == [
        "dispatch.secret: environment variable HOOK_SECRET is not set (line 12)"
    ]


def test_yaml_syntax_error_names_line() -> None:
    (problem,) = problems("cameras:\n  a:\n    url: [unclosed\n")
    assert problem.startswith("test.yaml: not valid YAML (line ")


def test_yaml_syntax_errors_keep_pythons_wording_though_libyaml_parses() -> None:
    # libyaml, which parses it first, words this "did not find expected ',' or ']'"
    assert problems("cameras:\n  a:\n    url: [unclosed\n") == [
        "test.yaml: not valid YAML (line 4, column 1): expected ',' or ']', but got '<stream end>'"
    ]


def test_duplicate_camera_is_an_error() -> None:
    text = "cameras:\n  a:\n    url: a.mp4\n  a:\n    url: b.mp4\n"
    assert problems(text) == ["cameras.a: duplicate key (line 4)"]


def test_several_problems_are_all_reported() -> None:
    text = "cameras:\n  a:\n    detect_fps: -1\ndetector:\n  min_score: 2\n"
    assert problems(text) == [
        "cameras.a.url: required, but missing (line 2)",
        "cameras.a.detect_fps: Input should be greater than 0 (line 3)",
        "detector.min_score: Input should be less than or equal to 1 (line 5)",
    ]


def test_empty_and_cameraless_files() -> None:
    assert problems("") == ["test.yaml: the file is empty: it needs at least a 'cameras' section"]
    assert problems("cameras: {}\n") == ["(top level): no cameras: add at least one under 'cameras' (line 1)"]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vision.cli", *args], capture_output=True, text=True, timeout=120, env=env
    )


def test_check_command_exit_codes(tmp_path: Path) -> None:
    ok = run_cli("check", str(ROOT / "configs" / "demo.yaml"))
    assert ok.returncode == 0, ok.stderr
    assert "ok: 1 camera(s)" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("[0.9, 0.1], [0.9, 0.9]]", "[0.9, 0.1]]"))
    result = run_cli("check", str(bad), env={"PATH": "/usr/bin:/bin", **ENV})
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"error: {bad}: cameras.riverbank.zones.no_fishing.polygon: needs at least 3 points (line 7)\n"
    )
    missing = run_cli("check", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "cannot read the config file" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_calibration_must_be_four_good_points() -> None:
    base = "cameras:\n  c:\n    url: a.mp4\n    calibration:\n"
    ok = (
        base
        + "      image: [[0.3, 0.4], [0.7, 0.4], [0.9, 0.9], [0.1, 0.9]]\n"
        + "      world: [[0, 0], [10, 0], [10, 4], [0, 4]]\n"
    )
    assert parse_config(ok).cameras["c"].calibration is not None
    assert problems(ok.replace("[0.1, 0.9]]", "]")) == [
        "cameras.c.calibration: needs exactly 4 image points and 4 world points (line 4)"
    ]
    assert problems(ok.replace("[10, 4], [0, 4]", "[20, 0], [0, 4]")) == [
        "cameras.c.calibration: world points: three of them lie on one line (line 4)"
    ]

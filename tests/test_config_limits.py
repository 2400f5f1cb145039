"""Hostile and careless config files: each ends as `check` exit 2 with one line naming the problem and
its limit, in bounded time and memory (the CLI runs under an address-space limit); ``${ENV}`` expands
only in the fields the file may use it in."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vision.config import ConfigError, load_config, parse_config
from vision.config.loading import (
    MAX_CAMERAS,
    MAX_FILE_BYTES,
    MAX_POLYGON_POINTS,
    MAX_YAML_ALIASES,
    MAX_YAML_DEPTH,
    MAX_ZONES,
)

from .conftest import ROOT, SAMPLE

MEMORY = 1024 * 2**20  # bytes of address space the CLI may use; importing it takes about 530 MB
SECONDS = 60  # a slow CI core; each case takes about 2 s
CAMERA = "cameras:\n  c:\n    url: a.mp4\n"
SQUARE = "[[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]]"
ENV = {"SV_PW": "pw-value-31415", "SV_HOOK": "hook-value-27182", "SV_DATA": "/tmp/sv-data-16180"}


def limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def check(path: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`street-vision check` in a subprocess that cannot use more than MEMORY."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "vision.cli", "check", str(path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1", **(env or {})},
        capture_output=True,
        text=True,
        timeout=SECONDS,
        preexec_fn=limited,
    )
    assert time.monotonic() - started < SECONDS
    return done


def refused(path: Path, *words: str) -> str:
    done = check(path)
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr and done.stdout == ""
    line = done.stderr.strip()
    assert "\n" not in line and line.startswith(f"error: {path}: "), line
    for word in words:
        assert word in line, line
    return line


def alias_bomb() -> str:
    lines = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, 9):
        prev, name = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
    return CAMERA + "\n".join(lines) + "\n"


HOSTILE = {
    "alias_bomb": (alias_bomb(), ["more than 300000 values", "MAX_YAML_NODES"]),
    "many_aliases": (
        CAMERA + "x: &x 1\ny: [" + ", ".join(["*x"] * (MAX_YAML_ALIASES + 1)) + "]\n",
        [f"more than {MAX_YAML_ALIASES} aliases"],
    ),
    "recursive_alias": (CAMERA + "x: &x [1, *x]\n", ["alias refers to the list or mapping that contains it"]),
    "deep_nesting": (CAMERA + "x: " + "[" * 20000 + "]" * 20000 + "\n", [f"deeper than {MAX_YAML_DEPTH}"]),
    "huge_polygon": (
        CAMERA + "    zones:\n      z:\n        polygon: [" + ",".join(["[0.5,0.5]"] * 20_000) + "]\n",
        ["cameras.c.zones.z.polygon: has 20000 points", f"at most {MAX_POLYGON_POINTS} are allowed"],
    ),
    "polygon_of_100000_points": (  # the file is within MAX_FILE_BYTES, its values are not
        CAMERA + "    zones:\n      z:\n        polygon: [" + ",".join(["[0,0]"] * 100_000) + "]\n",
        ["more than 300000 values", "(MAX_YAML_NODES)"],
    ),
    "many_zones": (
        CAMERA
        + "    zones:\n"
        + "".join(f"      z{i}: {{polygon: {SQUARE}}}\n" for i in range(MAX_ZONES + 1)),
        [f"cameras.c.zones: has {MAX_ZONES + 1} zones", f"at most {MAX_ZONES}"],
    ),
    "many_cameras": (
        "cameras:\n" + "".join(f"  c{i}: {{url: a.mp4}}\n" for i in range(MAX_CAMERAS + 1)),
        [f"cameras: has {MAX_CAMERAS + 1} cameras", f"at most {MAX_CAMERAS}"],
    ),
    "huge_file": (CAMERA + "#" * (MAX_FILE_BYTES + 1) + "\n", [f"over {MAX_FILE_BYTES} bytes"]),
    "huge_integer": (CAMERA + "    detect_fps: " + "9" * 5000 + "\n", ["not valid YAML", "digits"]),
    "bad_date": (CAMERA + "x: 2024-13-45\n", ["not valid YAML", "month"]),
    "nan_calibration": (
        CAMERA
        + f"    calibration:\n      image: {SQUARE}\n      world: [[0, 0], [.nan, 0], [10, 4], [0, 4]]\n",
        ["cameras.c.calibration.world[1][0]: must be a finite number, not nan (line 6)"],
    ),
    "infinite_fps": (CAMERA + "    detect_fps: .inf\n", ["cameras.c.detect_fps: must be a finite number"]),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_files_are_exit_2_naming_the_limit(tmp_path: Path, case: str) -> None:
    text, words = HOSTILE[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    refused(path, *words)


def test_a_latin1_file_is_refused_naming_the_encoding(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes((CAMERA + "# caméra du quai\n").encode("latin-1"))
    refused(path, "not UTF-8 text", "line 4")


def test_a_video_given_as_the_config_is_named_as_a_video(tmp_path: Path) -> None:
    """`street-vision run clip.mp4`: the file is named as the video it is (it was "over 1048576 bytes"),
    whichever container ffmpeg wrote it in."""
    refused(ROOT / "sample_videos" / "plaza.mp4", "this is an MP4/QuickTime video, not a config file")
    kinds = {
        "mp4": "MP4/QuickTime",
        "avi": "AVI",
        "mkv": "Matroska/WebM",
        "ts": "MPEG-TS",
        "flv": "FLV",
        "jpg": "picture",
    }
    for ext, kind in kinds.items():
        path = tmp_path / f"clip.{ext}"
        frames = ["-frames:v", "1"] if ext == "jpg" else ["-t", "0.5"]
        subprocess.run(
            ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", *frames, str(path)],
            check=True,
            timeout=60,
        )
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert f"{path}: this is a" in str(info.value) and kind in str(info.value), (ext, str(info.value))


def test_limits_leave_room_for_real_configs(tmp_path: Path) -> None:
    zones = "".join(
        f"      z{i}: {{polygon: [{', '.join(['[0.1, 0.1]', '[0.9, 0.1]', *['[0.5, 0.9]'] * 497])}]}}\n"
        for i in range(3)
    )
    text = CAMERA.replace("a.mp4", str(SAMPLE)) + "    zones:\n" + zones  # check reads its first frame
    text += f"      crowd: {{polygon: {SQUARE}, rules: {{crowd: &shared {{enter_count: 5}}}}}}\n"
    text += f"      crowd2: {{polygon: {SQUARE}, rules: {{crowd: *shared}}}}\n"
    path = tmp_path / "big.yaml"
    path.write_text(text)
    done = check(path)
    assert done.returncode == 0, done.stderr
    assert "5 zone(s)" in done.stdout


def test_env_references_expand_only_in_secret_and_url_fields(tmp_path: Path) -> None:
    text = (
        "cameras:\n  c:\n    url: rtsp://u:${SV_PW}@127.0.0.1/x\n"
        "dispatch:\n  webhook_url: http://127.0.0.1:9/${SV_HOOK}\n  secret: ${SV_HOOK}\n"
        "storage:\n  data_dir: ${SV_DATA}\n"
    )
    path = tmp_path / "env.yaml"
    path.write_text(text)
    config = load_config(path, ENV)
    assert config.cameras["c"].url.get_secret_value() == "rtsp://u:pw-value-31415@127.0.0.1/x"
    assert config.dispatch.webhook_url == "http://127.0.0.1:9/hook-value-27182"
    assert config.dispatch.secret is not None and config.dispatch.secret.get_secret_value() == ENV["SV_HOOK"]
    assert config.storage.data_dir == Path("/tmp/sv-data-16180")


@pytest.mark.parametrize(
    ("line", "key", "row"),
    [
        ("    detect_fps: ${SV_PW}\n", "cameras.c.detect_fps", 4),
        (
            "    zones:\n      z:\n        polygon: " + SQUARE + "\n"
            "        rules: {litter: {exclude_classes: ['${SV_HOOK}']}}\n",
            "cameras.c.zones.z.rules.litter.exclude_classes[0]",
            7,
        ),
        ("    heatmap: {classes: ['${SV_PW}']}\n", "cameras.c.heatmap.classes[0]", 4),
        ("detector: {model: '${SV_DATA}/card.yaml'}\n", "detector.model", 4),
    ],
)
def test_env_references_elsewhere_are_an_error_that_shows_no_value(line: str, key: str, row: int) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(CAMERA + line, "test.yaml", ENV)
    allowed = (
        "cameras.<id>.url, cameras.<id>.detect_url, dispatch.webhook_url, dispatch.secret, "
        "dispatch.targets.<id>.url, "
        "dispatch.targets.<id>.secret, dispatch.targets.<id>.api_key, storage.data_dir, storage.url"
    )
    assert info.value.problems == [
        f"{key}: environment references (${{...}}) are only allowed in {allowed} (line {row})"
    ]
    for value in ENV.values():
        assert value not in str(info.value)


def test_pyyaml_without_libyaml_loads_the_same_config() -> None:
    """A PyYAML built without libyaml has no CSafeLoader: configs still load, all in Python, the same."""
    code = (
        "import yaml; del yaml.CSafeLoader\n"
        "from vision.config import load_config\n"
        "from vision.config import loading as config_loading\n"
        "assert config_loading._LIBYAML is yaml.SafeLoader\n"
        "print(load_config('configs/many-cameras.yaml').model_dump_json())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=SECONDS,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == load_config(ROOT / "configs" / "many-cameras.yaml").model_dump_json()

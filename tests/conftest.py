"""Shared paths and helpers for the tests."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vision.config import StorageConfig

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
IMAGES = SHARED / "images"
FOOTAGE = SHARED / "footage" / "vtest.avi"
SAMPLE = ROOT / "sample_videos" / "plaza.mp4"


# Files that take minutes in CI (its --durations lines). pytest runs on xdist workers by file
# (`--dist loadfile --no-loadscope-reorder`, pyproject) and hands files out in collection order: these
# go first, so that no worker starts a long file while the others are finishing.
# The Ray cluster's tests have time limits: they start beside files that mostly wait on real time
# (not beside YOLO training or the footage evals, which take both cores).
LONG_FILES = (
    "test_cluster.py",
    "test_outage.py",
    "test_restart.py",
    "test_postgres_run.py",
    "test_open311.py",
    "test_reports.py",
    "test_yolo.py",
    "test_footage_suite.py",
    "test_tuning.py",
    "test_litter_scale.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The long files first, each file's tests in their order; the rest as collected."""
    rank = {name: i for i, name in enumerate(LONG_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def require(path: Path) -> Path:
    """A shared file the test needs: missing, it fails under CI=true and is skipped elsewhere."""
    if not path.exists():
        reason = f"{path} is not here (the shared data lives at ../shared/data beside the repo)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def cli(*args: str | Path, timeout: float = 240, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """``street-vision ARGS`` from this tree, in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "vision.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
    )


def start_run(config: Path, log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``street-vision run CONFIG`` from this tree in the background (for tests that kill it), its
    output appended to ``log``; ``env`` is added to the environment (the config's secrets)."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "vision.cli", "run", str(config)],
            stdout=out,
            stderr=out,
            cwd=ROOT,
            env={**os.environ, **env},
        )


@pytest.fixture(scope="session")
def detector():
    """The embedded default detector, loaded once (it is read-only)."""
    from vision.detect.card import load_card
    from vision.detect.detector import Detector

    return Detector(load_card("default"), threads=2, min_score=0.4)


@pytest.fixture(scope="session")
def zoo(tmp_path_factory: pytest.TempPathFactory):
    """Tiny YOLO models trained and exported on demand during this run (see yolo_zoo.py)."""
    from .yolo_zoo import Zoo, offline

    root = tmp_path_factory.mktemp("yolo")
    offline(root / "ultralytics-config")
    package("ultralytics")
    return Zoo(root)


@pytest.fixture(scope="session")
def coco(zoo):
    """The float COCO YOLOv8n rebuilt from the shared INT8 file (see yolo_zoo.Zoo.coco_checkpoint)."""
    return zoo.coco_checkpoint(require(SHARED / "models" / "yolov8n_coco_int8.onnx"))


def package(name: str) -> Any:
    """A Python package a test needs (from the test extra): missing, the test fails under CI=true."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        need(f"the Python package {name} is missing ({exc}): pip install -e '.[test]'")


def need(reason: str | None) -> None:
    """A part a test needs is missing: with CI=true that fails the test, elsewhere it skips it."""
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI needs this part: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres() -> Iterator:
    """One PostgreSQL server for the whole run, started on first use (see pg_support.py)."""
    from .pg_support import PostgresServer, missing

    need(missing())
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator:
    """The reference receiver on 127.0.0.1, checking the test service's hook secret (api_support)."""
    from .api_support import HOOK_SECRET
    from .dispatch_support import Receiver

    server = Receiver(tmp_path / "receiver.sqlite", secret=HOOK_SECRET).start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> StorageConfig:
    """The store settings of each backend: SQLite in the test's folder, or a new PostgreSQL database
    (snapshots stay in the test's folder either way)."""
    if request.param == "sqlite":
        return StorageConfig(data_dir=tmp_path)
    server = request.getfixturevalue("postgres")
    return StorageConfig(data_dir=tmp_path, url=server.url(server.database()))

"""The service sets Python's cyclic collector up once start-up is done (vision/collector.py)."""

from __future__ import annotations

import gc
import re
import weakref
from pathlib import Path

from vision import collector

from .conftest import cli
from .test_run_stats import write_config

FROZEN = re.compile(r"collector: (\d+) start-up objects frozen")


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_settle_collects_start_up_garbage_then_freezes_the_rest() -> None:
    garbage, kept = Node(), Node()
    garbage.other = garbage  # a cycle nothing refers to: freed by the collect, not kept frozen
    dead = weakref.ref(garbage)
    del garbage
    try:
        frozen = collector.settle()
        assert dead() is None
        assert frozen == gc.get_freeze_count() > 1000  # the modules' objects at least
        assert not any(o is kept for o in gc.get_objects())  # out of the collector's walks
    finally:
        gc.unfreeze()  # this test process is not a service


def test_run_freezes_start_up_objects(tmp_path: Path) -> None:
    config = write_config(tmp_path, realtime=False, detect_fps=1)
    run = cli("run", config, timeout=120)
    assert run.returncode == 0, run.stderr
    (frozen,) = FROZEN.findall(run.stderr)  # once, before the pipeline ran
    assert int(frozen) > 10_000  # numpy, OpenCV, onnxruntime and the model

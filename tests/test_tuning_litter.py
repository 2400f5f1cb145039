"""The litter rule's static blobs as `litter` pre-labels, on the bundled litter clip and its truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

from vision.geometry import box_iou
from vision.tuning.layout import read_labels

from .conftest import ROOT, cli

LITTER = ROOT / "sample_videos" / "litter.mp4"


def test_static_blobs_become_litter_prelabels_after_the_drop(tmp_path: Path) -> None:
    truth = yaml.safe_load(LITTER.with_suffix(".truth.yaml").read_text())
    incident = truth["incidents"][0]
    config = tmp_path / "city.yaml"
    camera = {**truth["camera"], "url": str(LITTER)}
    config.write_text(
        yaml.safe_dump({"cameras": {"walkway": camera}, "storage": {"data_dir": str(tmp_path)}})
    )
    out = tmp_path / "mined"
    mined = cli("dataset", "mine", config, "--out", out, "--every", "3", "--max-distance", "0")
    assert mined.returncode == 0, mined.stderr
    result = cli(
        "dataset",
        "label",
        out,
        "--classes",
        "person,bicycle,litter",
        "--config",
        config,
        "--val-fraction",
        "0.3",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    litter = {"before": [], "after": []}
    for r in records:
        xyxy, class_id = read_labels(out / r["image"], r["width"], r["height"])
        boxes = xyxy[class_id == 2]
        if r["pts"] < incident["start"]:
            litter["before"].append(len(boxes))
        elif r["pts"] >= incident["start"] + 8 and r["pts"] < incident["end"]:  # settled, still there
            best = float(box_iou(np.array(incident["box"], np.float32), boxes).max(initial=0.0))
            litter["after"].append(best)
    assert litter["before"] and not any(litter["before"]), litter
    assert litter["after"] and min(litter["after"]) > 0.3, litter
    assert summary["litter_blobs"] >= len(litter["after"])


def test_litter_prelabels_need_the_class_and_a_litter_rule(tmp_path: Path) -> None:
    truth = yaml.safe_load(LITTER.with_suffix(".truth.yaml").read_text())
    camera = {**truth["camera"], "url": str(LITTER)}
    config = tmp_path / "city.yaml"
    config.write_text(
        yaml.safe_dump({"cameras": {"walkway": camera}, "storage": {"data_dir": str(tmp_path)}})
    )
    out = tmp_path / "mined"
    assert cli("dataset", "mine", config, "--out", out, "--every", "6").returncode == 0
    result = cli("dataset", "label", out, "--classes", "person,bicycle", "--config", config)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["litter_blobs"] == 0

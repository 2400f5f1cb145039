"""Model cards: a YAML file beside each model saying how to feed it and how to read its output.

Models are data: adding a model is a file and a card, no code. The card is checked
against the file at start-up so that a wrong card fails loudly, naming both.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
DEFAULT_CARD = MODELS_DIR / "ssd_mobilenet_v2_coco.yaml"


class ModelError(Exception):
    """A model or its card cannot be used; the message names the file and what to change."""


class InputSpec(BaseModel):
    """What the network expects."""

    model_config = ConfigDict(extra="forbid")

    width: int = Field(gt=0)
    height: int = Field(gt=0)
    layout: Literal["nhwc", "nchw"]
    dtype: Literal["uint8", "float32"]
    color: Literal["rgb", "bgr"]
    resize: Literal["stretch", "letterbox"]
    scale: float = Field(1.0, description="Pixels become (x - mean) * scale.")
    mean: float = 0.0
    pad_value: int = Field(114, ge=0, le=255, description="Letterbox border colour (Ultralytics uses 114).")
    stride: int = Field(
        32, gt=0, description="The network's largest stride; rect inputs are multiples of it."
    )
    rect: bool = Field(
        False,
        description="Letterbox to the smallest multiple of `stride` that holds the frame instead of the "
        "full width x height (Ultralytics' rect inference): a 16:9 frame fed to a 640 model becomes "
        "640x384, not 640x640. Needs a model whose height and width axes are dynamic.",
    )


class SourceSpec(BaseModel):
    """Where the file came from, for the license trail."""

    model_config = ConfigDict(extra="forbid")

    package: str | None = None
    path: str | None = None
    converter: str | None = None


class ModelCard(BaseModel):
    """One model: its file, input, output decoding and labels."""

    model_config = ConfigDict(extra="forbid")

    name: str
    file: str = Field(description="Model file, relative to the card.")
    sha256: str | None = Field(None, description="If given, the file must match it.")
    format: Literal["onnx", "pt"] = Field(
        description="onnx runs on ONNX Runtime; pt needs the ultralytics backend."
    )
    family: str = Field(
        description="How outputs are decoded, one of vision/detect/families.py: ssd-boxes is an SSD cut "
        "before its post-process (decoded boxes [B, anchors, 4] as normalized ymin, xmin, ymax, xmax and "
        "scores [B, classes, anchors]; NMS is ours); "
        "yolo-v8 is the anchor-free head of YOLOv8, YOLO11, YOLO26 and Ultralytics' yolov5u "
        "([B, 4+nc, anchors]); yolo-v5 the original YOLOv5 head ([B, anchors, 5+nc])."
    )
    input: InputSpec
    nms_embedded: bool = Field(
        description="The model does its own NMS (YOLO exported with nms=True or YOLO26 end-to-end), "
        "returning [B, max_det, 6] rows of x1, y1, x2, y2, score, class. Always false for ssd-boxes."
    )
    nms_iou: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description="The IoU of the model's own NMS (an ssd-boxes card takes it from the converted graph: "
        "0.6 for TFLite's SSD); when given it replaces detector.iou for this model.",
    )
    outputs: list[str] = Field(
        default_factory=list,
        description="Output tensor names, in the order the family's decoder expects (onnx only).",
    )
    labels: dict[int, str]
    min_object_px: float = Field(
        28.0,
        gt=0,
        description="Height, in the model's input pixels, of the smallest person it finds reliably. The "
        "detection planner (detect_regions.mode: auto) cuts a zone into tiles where its people would come "
        "out smaller than this on the whole frame; where crops overlap, a person drawn smaller than this "
        "gives way to a crop that shows them at this size or more. The default is what YOLOv8n needs "
        "(benchmarks/min_object.md).",
    )
    looks: int = Field(
        1,
        ge=1,
        le=2,
        description="How many tile grids of different sizes the detection planner lays over a zone of small "
        "people: 2 for a model whose recall levels off low (the embedded SSD finds two people in three even "
        "at its best size, benchmarks/min_object.md), so each person gets a second, independent chance; "
        "a single look left the SSD's crowd count on the distant plaza a coin toss of the tiles' offsets "
        "(docs/evaluation.md).",
    )
    max_box_fraction: dict[str, float] = Field(
        default_factory=dict,
        description="Per label (or `all` for every label), the largest share of the frame's area a real "
        "box can cover; a bigger box is dropped as impossible (the embedded SSD reports a 'person' covering "
        "most of a crowded frame).",
    )
    source: SourceSpec | None = None
    license: str | None = None
    card_path: Path = Field(Path(), exclude=True)

    @model_validator(mode="after")
    def _known_labels(self) -> ModelCard:
        from vision.detect.families import FAMILIES  # its decoders import this module

        family = FAMILIES.get(self.family)
        if family is None:
            raise ValueError(f"family: no family {self.family!r} (use one of {', '.join(FAMILIES)})")
        if self.nms_embedded and not family.own_nms:
            raise ValueError(f"nms_embedded: {self.family} models leave NMS to us (set it to false)")
        unknown = sorted(set(self.max_box_fraction) - set(self.labels.values()) - {"all"})
        if unknown:
            raise ValueError(f"max_box_fraction: no label {', '.join(unknown)} (use a label or `all`)")
        bad = [k for k, v in self.max_box_fraction.items() if not 0 < v <= 1]
        if bad:
            raise ValueError(f"max_box_fraction: {', '.join(bad)} must be a fraction in (0, 1]")
        return self

    @property
    def model_path(self) -> Path:
        return self.card_path.parent / self.file

    @property
    def people(self) -> np.ndarray:
        """The class ids labelled ``person`` (int32), which the planner sizes and the tile merge judges."""
        return np.array([k for k, v in self.labels.items() if v == "person"], np.int32)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


MODEL_FILES = frozenset({".onnx", ".pt"})  # given where a card belongs: read as an Ultralytics export


def load_card(path: str | Path) -> ModelCard:
    """Read a card ('default' means the embedded SSD) and check that its model file is there. A bare
    Ultralytics export (.onnx, .pt) gets the card its own metadata describes (what ``models card`` would
    write), so ``--model yolov8n.onnx`` works as ``YOLO("yolov8n.onnx")`` does in Ultralytics."""
    card_path = DEFAULT_CARD if str(path) == "default" else Path(path)
    if card_path.suffix.lower() in MODEL_FILES:
        return _bare_model(card_path)
    try:
        data = yaml.safe_load(card_path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelError(f"model card {card_path}: cannot read it: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ModelError(
            f"model card {card_path}: not a text file (a card is YAML; a model file is read without a card "
            "only when its name ends in .onnx or .pt)"
        ) from None
    except yaml.YAMLError as exc:
        raise ModelError(f"model card {card_path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ModelError(f"model card {card_path}: expected a mapping of keys (name, file, family, ...)")
    card = _validated(data, card_path)
    if card.sha256 and sha256_of(card.model_path) != card.sha256:
        raise ModelError(
            f"model file {card.model_path} does not match its card {card_path}: sha256 differs "
            "(the file was changed or corrupted; rebuild it or update the card)"
        )
    return card


def _bare_model(path: Path) -> ModelCard:
    """The card of a model file given without one, from the file's own metadata; a file that is not an
    Ultralytics YOLO export fails naming the command that writes its card."""
    from vision.detect.yolo_card import card_for  # it builds on this module's types

    if not path.is_file():
        raise ModelError(f"model file {path} does not exist")
    try:
        data = card_for(path)
    except ModelError as exc:
        raise ModelError(
            f"{exc}; a model file given without a card is read as an Ultralytics YOLO export: write a card "
            f"for it (`street-vision models card {path} --labels FILE` for a YOLO export without metadata, "
            'by hand for any other model: README "Models")'
        ) from None
    return _validated(data, path)


def _validated(data: dict, card_path: Path) -> ModelCard:
    """The card made of ``data``, read from ``card_path`` (its model file's folder), with its file there."""
    try:
        card = ModelCard.model_validate({**data, "card_path": card_path})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ModelError(f"model card {card_path}: {problems}") from None
    if not card.model_path.is_file():
        raise ModelError(f"model card {card_path}: its model file {card.model_path} does not exist")
    return card

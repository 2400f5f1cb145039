"""Ultralytics exports and their cards: read the metadata Ultralytics writes, check a card
against it, and write the card of a YOLO export so that bringing a model is one command.

Ultralytics stores ``names``, ``imgsz``, ``stride``, ``batch``, ``task``, ``end2end`` and the
export ``args`` as ONNX metadata_props (Python literals as strings).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import yaml

from vision.detect.card import ModelCard, ModelError, sha256_of

LITERALS = {"names", "imgsz", "args", "end2end", "kpt_shape"}
INTEGERS = {"stride", "batch", "channels"}


def parse_metadata(raw: dict[str, str]) -> dict[str, Any]:
    """Ultralytics' metadata strings as Python values; unknown keys stay strings."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        try:
            out[key] = (
                ast.literal_eval(value) if key in LITERALS else int(value) if key in INTEGERS else value
            )
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def expected_output(card: ModelCard) -> tuple[int, int]:
    """(axis, size) that the card's family and labels fix in the output shape [B, a, b]."""
    nc = len(card.labels)
    if card.nms_embedded:
        return 2, 6
    return (1, 4 + nc) if card.family == "yolo-v8" else (2, 5 + nc)


def check_yolo(card: ModelCard, shapes: list[list[int | str | None]], metadata: dict[str, Any]) -> None:
    """Fail, naming file and card, when a YOLO card's classes or layout do not match its file (its first
    output's shape of ``shapes``, and the class names of its Ultralytics ``metadata``)."""
    output_shape = shapes[0]
    nc = len(card.labels)
    if sorted(card.labels) != list(range(nc)):
        raise ModelError(
            f"model card {card.card_path}: YOLO labels must be numbered 0..{nc - 1} without gaps"
        )
    axis, size = expected_output(card)
    layout = (
        "[B, max_det, 6] (nms_embedded: true)"
        if card.nms_embedded
        else f"[B, 4+{nc}, anchors] (family yolo-v8)"
        if card.family == "yolo-v8"
        else f"[B, anchors, 5+{nc}] (family yolo-v5)"
    )
    actual = output_shape[axis] if len(output_shape) == 3 else None
    if len(output_shape) != 3 or (isinstance(actual, int) and actual != size):
        raise ModelError(
            f"model file {card.model_path} returns {list(output_shape)}, but its card {card.card_path} "
            f"describes {layout} with {nc} labels: fix the family, nms_embedded or labels "
            "(street-vision models card MODEL.onnx writes a matching card)"
        )
    names = metadata.get("names")
    if isinstance(names, dict) and {int(k): str(v) for k, v in names.items()} != card.labels:
        diff = [
            f"{k}: {names.get(k)!r} vs {card.labels.get(k)!r}"
            for k in sorted(set(names) | set(card.labels))
            if names.get(k) != card.labels.get(k)
        ]
        raise ModelError(
            f"model file {card.model_path} names its {len(names)} classes differently from its card "
            f"{card.card_path} ({len(card.labels)} labels): file vs card {'; '.join(diff[:5])}"
        )


def _read_onnx(path: Path) -> tuple[list[Any], list[Any], dict[str, Any]]:
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises several private exception types
        raise ModelError(f"model file {path}: ONNX Runtime cannot load it: {exc}") from None
    meta = parse_metadata(dict(session.get_modelmeta().custom_metadata_map))
    return session.get_inputs(), session.get_outputs(), meta


def _read_pt(path: Path) -> dict[str, Any]:
    from vision.detect.ultralytics_backend import load_yolo

    model = load_yolo(path)
    args = getattr(model.model, "args", {}) or {}
    imgsz = args.get("imgsz", 640)
    return {
        "names": dict(model.names),
        "imgsz": [imgsz, imgsz] if isinstance(imgsz, int) else list(imgsz),
        "stride": int(max(model.model.stride)),
        "task": model.task,
    }


def card_for(path: Path, labels: dict[int, str] | None = None) -> dict[str, Any]:
    """The card of a YOLO export (ONNX) or checkpoint (.pt), from the file alone."""
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist")
    fmt = "pt" if path.suffix == ".pt" else "onnx"
    meta = _read_pt(path) if fmt == "pt" else {}
    if fmt == "onnx":
        inputs, outputs, meta = _read_onnx(path)
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise ModelError(
                f"model file {path}: expected one [B, 3, H, W] input, found {len(inputs)} input(s)"
            )
    if meta.get("task", "detect") != "detect":
        raise ModelError(f"model file {path} is a {meta['task']} model; only detect models are supported")
    names = labels or {int(k): str(v) for k, v in (meta.get("names") or {}).items()}
    if not names:
        raise ModelError(f"model file {path} carries no class names in its metadata: pass --labels FILE")
    imgsz = meta.get("imgsz", [640, 640])
    height, width = (imgsz, imgsz) if isinstance(imgsz, int) else imgsz
    card: dict[str, Any] = {"name": path.stem, "file": path.name, "sha256": sha256_of(path), "format": fmt}
    nms_embedded, family, rect, outputs_names = False, "yolo-v8", fmt == "pt", []
    if fmt == "onnx":
        shape = inputs[0].shape
        rect = not (isinstance(shape[2], int) and isinstance(shape[3], int))
        if not rect:
            height, width = shape[2], shape[3]
        out_shape = outputs[0].shape
        nc = len(names)
        args = meta.get("args") or {}
        nms_embedded = bool(meta.get("end2end") or args.get("nms"))
        if len(out_shape) != 3:
            raise ModelError(
                f"model file {path}: output {outputs[0].name} is {out_shape}, not a YOLO detect head"
            )
        if not nms_embedded and out_shape[1] != 4 + nc:
            if out_shape[2] == 5 + nc:
                family = "yolo-v5"
            elif out_shape[2] == 6:
                nms_embedded = True
            else:
                raise ModelError(
                    f"model file {path}: output {list(out_shape)} fits neither "
                    f"[B, 4+{nc}, anchors] (yolo-v8) nor [B, anchors, 5+{nc}] (yolo-v5) "
                    f"nor [B, max_det, 6] (embedded NMS) for {nc} classes"
                )
        outputs_names = [outputs[0].name]
    card.update(
        family=family,
        input={
            "width": int(width),
            "height": int(height),
            "layout": "nchw",
            "dtype": "float32",
            "color": "rgb",
            "resize": "letterbox",
            "scale": 1 / 255,
            "mean": 0.0,
            "pad_value": 114,
            "stride": int(meta.get("stride", 32)),
            "rect": rect,
        },
        nms_embedded=nms_embedded,
        outputs=outputs_names,
        labels=names,
    )
    if "version" in meta:
        card["source"] = {"package": meta.get("description"), "converter": f"ultralytics {meta['version']}"}
    if "license" in meta:
        card["license"] = meta["license"]
    return card


def write_card(path: Path, out: Path | None = None, labels: dict[int, str] | None = None) -> Path:
    """Write the card beside the model (MODEL.yaml) unless ``out`` says where; returns its path."""
    card = card_for(path, labels)
    out = out or path.with_suffix(".yaml")
    if out.parent.resolve() != path.parent.resolve():
        card["file"] = str(Path(path).resolve())
    header = f"# Written by `street-vision models card {path.name}` from the file's own metadata.\n"
    out.write_text(header + yaml.safe_dump(card, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return out

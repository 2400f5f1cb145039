"""What a model file must offer for its card: checked at start-up, whichever engine runs the file.

ONNX Runtime and OpenVINO read the same ONNX file and describe its input and outputs each in
their own types; both hand the description here as plain values, so a card that does not fit
its file fails with the same message naming both, before any camera starts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from vision.detect.card import ModelCard, ModelError
from vision.detect.families import FAMILIES

Shape = Sequence[int | str | None]  # a dimension not fixed in the file: a name or None


def check_contract(
    card: ModelCard, shape: Shape, dtype: str, outputs: Mapping[str, Shape], metadata: dict[str, Any]
) -> None:
    """Fail, naming file and card, when the card does not describe the file: its one input's ``shape``
    and ``dtype`` (numpy's name: float32, uint8), its ``outputs`` (name to shape) and Ultralytics'
    ``metadata`` where the file has it."""
    spec = card.input
    expected = (spec.height, spec.width, 3) if spec.layout == "nhwc" else (3, spec.height, spec.width)
    actual = tuple(shape[1:])
    fixed = all(isinstance(a, int) for a in actual)
    if len(actual) != 3 or (fixed and actual != expected):
        raise ModelError(
            f"model file {card.model_path} takes input {list(shape)}, but its card {card.card_path} "
            f"says {spec.layout} {spec.width}x{spec.height}"
        )
    if spec.rect and fixed:
        raise ModelError(
            f"model file {card.model_path} takes a fixed input {list(shape)}, but its card "
            f"{card.card_path} asks for rect inputs: set rect: false, or export with dynamic=True"
        )
    if dtype != spec.dtype:
        raise ModelError(
            f"model file {card.model_path} takes {dtype}, but its card {card.card_path} says {spec.dtype}"
        )
    unknown = [n for n in card.outputs if n not in outputs]
    if unknown or not card.outputs:
        raise ModelError(
            f"model file {card.model_path} has outputs {list(outputs)}, but its card {card.card_path} "
            f"names {unknown or 'none'}"
        )
    FAMILIES[card.family].check(card, [list(outputs[name]) for name in card.outputs], metadata)

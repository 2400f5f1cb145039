"""The one detector shared by all cameras: batch of frames in, Detections per frame out."""

from __future__ import annotations

import numpy as np

from vision.config import DetectorConfig
from vision.detect.card import ModelCard, ModelError, load_card
from vision.detect.onnx_backend import OnnxModel
from vision.detect.preprocess import place, to_tensor
from vision.detect.ssd import decode_ssd
from vision.types import Detections

DECODERS = {"ssd-postprocess": decode_ssd}


class Detector:
    """Runs a model card's model on batches of BGR frames of any size."""

    def __init__(
        self,
        card: ModelCard,
        device: str = "cpu",
        threads: int = 0,
        min_score: float = 0.4,
        classes: list[str] | None = None,
    ) -> None:
        self.card = card
        self.model = OnnxModel(card, device, threads)
        self.decode = DECODERS[card.family]
        self.min_score = min_score
        self.names = dict(card.labels)
        self.keep: np.ndarray | None = None
        if classes is not None:
            by_name = {v: k for k, v in self.names.items()}
            unknown = [c for c in classes if c not in by_name]
            if unknown:
                raise ModelError(
                    f"detector.classes: model {card.name} has no class {', '.join(unknown)} "
                    f"(see the labels in {card.card_path})"
                )
            self.keep = np.array([by_name[c] for c in classes], np.int32)

    @classmethod
    def from_config(cls, config: DetectorConfig) -> Detector:
        return cls(load_card(config.model), config.device, config.threads, config.min_score, config.classes)

    def detect(self, images: list[np.ndarray]) -> list[Detections]:
        """Detections per image, boxes in that image's pixels; a bad image raises ValueError."""
        if not images:
            return []
        placed = [place(image, self.card.input) for image in images]
        tensors = [p[0] for p in placed]
        geometries = [p[1] for p in placed]
        if self.model.batch_dynamic:
            outputs = self.model.run(to_tensor(tensors, self.card.input))
        else:  # fixed batch of 1: one call per image, outputs concatenated along the batch axis
            runs = [self.model.run(to_tensor([t], self.card.input)) for t in tensors]
            outputs = [np.concatenate(parts) for parts in zip(*runs, strict=True)]
        results = self.decode(outputs, geometries, self.card.input, self.min_score)
        if self.keep is not None:
            results = [d[np.isin(d.class_id, self.keep)] for d in results]
        return results

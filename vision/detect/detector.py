"""The one detector shared by all cameras: batch of frames in, Detections per frame out.

A frame may come with regions (crops or tiles, see regions.py): every crop of every
frame goes to the model in one batch, and the boxes come back merged per frame.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from vision.config import DetectorConfig
from vision.detect.card import ModelCard, ModelError, load_card
from vision.detect.families import decoder_for
from vision.detect.limits import BoxLimits
from vision.detect.onnx_backend import OnnxModel
from vision.detect.params import DecodeParams
from vision.detect.plans import ModelScale
from vision.detect.preprocess import check_image, place, to_tensor
from vision.detect.regions import cut, merge
from vision.detect.threads import cores, cpu_flags, split
from vision.types import Detections, label_ids


class Engine(Protocol):
    """Runs a model on whole images: a list of BGR frames in, Detections in their pixels out."""

    def infer(self, images: list[np.ndarray]) -> list[Detections]: ...


def file_model(
    card: ModelCard, backend: str, device: str, threads: int, spin: bool, calls: int, precision: str
) -> FileModel:
    """The card's ONNX file loaded by ``backend`` (onnx or openvino) for ``calls`` model calls at once of
    ``threads`` threads each."""
    if card.format != "onnx":
        raise ModelError(
            f"model card {card.card_path}: a {card.format} model runs on detector.backend: ultralytics"
        )
    if backend == "openvino":
        from vision.detect.openvino_backend import OpenVinoModel  # the optional extra, imported when asked

        return OpenVinoModel(card, calls, threads, precision)
    return OnnxModel(card, device, threads, spin)


def describe_engine(config: DetectorConfig) -> str:
    """What runs the model, as ``check`` says it: the engine, its device, and OpenVINO's precision on this
    CPU (a missing ``openvino`` extra is a ModelError here, before any camera starts)."""
    if config.backend == "openvino":
        from vision.detect.openvino_backend import chosen_precision  # the optional extra

        return f"OpenVINO (cpu), precision {chosen_precision(config.precision)}"
    engine = "Ultralytics" if config.backend == "ultralytics" else "ONNX Runtime"
    return f"{engine} ({config.device})"


def engine_hint(config: DetectorConfig, card: ModelCard, flags: frozenset[str] | None = None) -> str | None:
    """A faster engine for this model on this CPU, for ``check`` to say: a float ONNX model on ONNX
    Runtime's CPU, where the CPU (its ``flags``, default this one's) has AMX, and OpenVINO computes
    it in bfloat16 (measured there only: an INT8 model gained nothing, benchmarks/openvino_infer.md)."""
    if config.backend != "onnx" or config.device != "cpu" or card.format != "onnx":
        return None
    if "amx_bf16" not in (cpu_flags() if flags is None else flags) or card.input.dtype != "float32":
        return None
    import onnx  # here: its import costs about a second of CPU, paid only for such a model

    from vision.detect.graph import quantized

    if quantized(onnx.load(str(card.model_path), load_external_data=False)):
        return None
    return (
        "this CPU has AMX: with `detector.backend: openvino` it computes this float model in bfloat16, "
        "the float YOLOv8n in 0.35 of ONNX Runtime's CPU time (benchmarks/openvino_infer.md; the "
        "`openvino` extra)"
    )


class FileModel(Protocol):
    """An ONNX file's model as run by ONNX Runtime (onnx_backend.py) or OpenVINO (openvino_backend.py)."""

    batch_size: int | None  # None: any batch

    def run(self, batch: np.ndarray) -> list[np.ndarray]: ...


class OnnxEngine:
    """Preprocess, the ONNX file's model (ONNX Runtime, the default: no torch needed; or OpenVINO),
    decode."""

    def __init__(self, card: ModelCard, model: FileModel, params: DecodeParams, max_batch: int) -> None:
        self.card = card
        self.model = model
        self.decode = decoder_for(card)
        self.params = params
        self.max_batch = max_batch

    def infer(self, images: list[np.ndarray]) -> list[Detections]:
        """One model call per batch of equal-sized inputs (rect inputs can differ per frame size).

        A model with a fixed batch of B takes B frames per call, the last call padded
        with copies; a dynamic batch axis takes the frames of a shape ``max_batch`` at a time.
        """
        placed = [place(image, self.card.input) for image in images]
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, (tensor, _) in enumerate(placed):
            by_shape.setdefault(tensor.shape, []).append(i)
        results: dict[int, Detections] = {}  # every input gets its own: no placeholder to build first
        for indices in by_shape.values():
            step = self.model.batch_size or min(len(indices), self.max_batch)
            for start in range(0, len(indices), step):
                chunk = indices[start : start + step]
                tensors = [placed[i][0] for i in chunk]
                tensors += tensors[-1:] * (step - len(chunk))
                outputs = self.model.run(to_tensor(tensors, self.card.input))
                decoded = self.decode(
                    [o[: len(chunk)] for o in outputs], [placed[i][1] for i in chunk], self.params
                )
                results.update(zip(chunk, decoded, strict=True))
        return [results[i] for i in range(len(images))]


class Detector:
    """Runs a model card's model on batches of BGR frames of any size; :meth:`detect` may be called
    from ``parallel`` threads at once (the pipeline runs that many inference threads)."""

    def __init__(
        self,
        card: ModelCard,
        device: str = "cpu",
        threads: int = 0,
        min_score: float = 0.4,
        classes: list[str] | None = None,
        iou: float = 0.7,
        max_det: int = 300,
        backend: str = "onnx",
        engine: Engine | None = None,
        max_batch: int = 32,
        spin: bool = False,
        parallel: int = 1,
        precision: str = "auto",
    ) -> None:
        self.card = card
        self.parallel = parallel
        self.names = dict(card.labels)
        self.wanted: np.ndarray | None = None  # by class id + 1: kept by detector.classes
        ids = None
        if classes is not None:
            ids, unknown = label_ids(self.names, classes)
            if unknown:
                raise ModelError(
                    f"detector.classes: model {card.name} has no class {', '.join(unknown)} "
                    f"(see the labels in {card.card_path})"
                )
            # a table lookup, not np.isin (20x its cost on a frame's few boxes): index 0 and the last are
            # False, so an id below 0 or past the labels is dropped, as np.isin drops it
            self.wanted = np.zeros(max(self.names, default=-1) + 3, bool)
            self.wanted[np.array(ids) + 1] = True
        nms_iou = iou if card.nms_iou is None else card.nms_iou
        # the kept classes go to the decoder too: a frame that shows none of them need not be decoded
        self.params = DecodeParams(
            min_score=min_score, iou=nms_iou, max_det=max_det, classes=None if ids is None else tuple(ids)
        )
        self.engine: Engine
        if engine is not None:  # the model runs elsewhere (a cluster's shared replicas)
            self.engine = engine
        elif backend == "ultralytics":
            from vision.detect.ultralytics_backend import UltralyticsModel

            self.engine = UltralyticsModel(card, device, self.params)
        else:
            self.engine = OnnxEngine(
                card,
                file_model(card, backend, device, threads, spin, parallel, precision),
                self.params,
                max_batch,
            )
        self.limits = BoxLimits.of(card)
        self.scale = ModelScale.of(card.input, card.min_object_px)
        self.people = card.people

    @classmethod
    def from_config(
        cls, config: DetectorConfig, engine: Engine | None = None, cameras: int | None = None
    ) -> Detector:
        """The configured detector for ``cameras`` cameras (None: any number); with a remote ``engine``
        (a cluster's replicas) one call at a time."""
        cpu = split(config.parallel, config.threads, config.device, config.backend, cores(), cameras)
        return cls(
            load_card(config.model),
            config.device,
            cpu.threads,
            config.min_score,
            config.classes,
            config.iou,
            config.max_det,
            config.backend,
            engine,
            config.max_batch,
            config.spin,
            cpu.calls if engine is None else 1,
            config.precision,
        )

    def detect(
        self, images: list[np.ndarray], regions: list[np.ndarray | None] | None = None
    ) -> list[Detections]:
        """Detections per image, boxes in that image's pixels; a bad image raises ValueError.

        ``regions`` gives, per image, None (the whole image) or [R, 4] int crop boxes in
        its pixels (a camera's come from its planner, planner.py); boxes found in crops come
        back merged, a person drawn below the card's ``min_object_px`` giving way to a crop
        that shows them larger.
        """
        if not images:
            return []
        for image in images:
            check_image(image)
        if regions is None or all(r is None for r in regions):
            found = self.engine.infer(images)
            return [self._kept(d, image, self.wanted) for d, image in zip(found, images, strict=True)]
        crops, where = cut(images, regions)
        found = [self._kept(d, crop, None) for d, crop in zip(self.engine.infer(crops), crops, strict=True)]
        scale = np.array([self.scale.frame_scale(c.shape[1], c.shape[0]) for c in crops], np.float32)
        sizes = [(i.shape[1], i.shape[0]) for i in images]
        results = merge(found, where, sizes, scale, self.card.min_object_px, self.people)
        return results if self.wanted is None else [self._kept(d, None, self.wanted) for d in results]

    def _kept(self, found: Detections, shown: np.ndarray | None, wanted: np.ndarray | None) -> Detections:
        """``found`` less the boxes the card calls impossible in the image (or crop) ``shown`` to the model
        (None: not checked here) and, with ``wanted``, those of classes not configured: one selection, none
        when it would keep them all."""
        if len(found) == 0:
            return found
        keep = None
        if shown is not None and self.limits is not None:
            keep = self.limits.fits(found, shown.shape[1], shown.shape[0])
        if wanted is not None:
            classes = np.take(wanted, found.class_id + 1, mode="clip")
            keep = classes if keep is None else keep & classes
        return found if keep is None or keep.all() else found[keep]  # all kept: no copy of every array

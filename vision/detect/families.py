"""Model families by name: how a family's outputs are checked against its card, and decoded into boxes.

A card's ``family`` names one of :data:`FAMILIES`; a new family is one entry there (its decoder and the
check of its outputs' shapes) and no other code changes: a model is data, a file and its card. A model
that does its own NMS (``nms_embedded``: YOLO exported with nms=True, YOLO26 end-to-end) returns rows
of boxes whatever its family, so one decoder reads them all, for the families that allow it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from vision.detect.card import ModelCard
from vision.detect.params import DecodeParams
from vision.detect.preprocess import Geometry
from vision.detect.ssd import check_ssd_boxes, decode_ssd_boxes
from vision.detect.yolo import decode_embedded_nms, decode_yolo_v5, decode_yolo_v8
from vision.detect.yolo_card import check_yolo
from vision.types import Detections

Decoder = Callable[[list[np.ndarray], list[Geometry], DecodeParams], list[Detections]]
# the file's output shapes, in the card's order of its outputs, and its metadata (Ultralytics' names)
OutputCheck = Callable[[ModelCard, list[list[int | str | None]], dict[str, Any]], None]


class Family(NamedTuple):
    """One family: its decoder, the check of a file's outputs against a card, and whether a model of
    it may do its own NMS (an SSD cut before its post-process leaves NMS to us)."""

    decode: Decoder
    check: OutputCheck
    own_nms: bool = True


FAMILIES: dict[str, Family] = {
    "ssd-boxes": Family(decode_ssd_boxes, check_ssd_boxes, own_nms=False),
    "yolo-v8": Family(decode_yolo_v8, check_yolo),
    "yolo-v5": Family(decode_yolo_v5, check_yolo),
}


def decoder_for(card: ModelCard) -> Decoder:
    """The card's family's decoder, or the rows of a model that does its own NMS."""
    return decode_embedded_nms if card.nms_embedded else FAMILIES[card.family].decode

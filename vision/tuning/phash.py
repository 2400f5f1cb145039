"""Perceptual hashes to drop near-duplicate frames: a fixed camera sends thousands of almost equal ones.

dHash: the picture shrunk to (size+1) x size grey pixels, one bit per horizontal
neighbour pair (is the left one brighter?). Small changes of light or JPEG noise flip
few bits; a new object in view flips the bits around it. With size 16 the hash has
256 bits, fine enough that a bag left on a quay is not a duplicate of the empty quay.
"""

from __future__ import annotations

import cv2
import numpy as np

POPCOUNT = np.array([bin(i).count("1") for i in range(256)], np.uint8)


def dhash(image: np.ndarray, size: int = 16) -> np.ndarray:
    """The dHash of a BGR or grey image as ``size * size / 8`` packed bytes."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    small = cv2.resize(grey, (size + 1, size), interpolation=cv2.INTER_AREA).astype(np.int16)
    return np.packbits(small[:, 1:] > small[:, :-1])


def distances(hashes: np.ndarray, one: np.ndarray) -> np.ndarray:
    """Hamming distance of ``one`` to each row of ``hashes`` ([N, bytes] uint8)."""
    return POPCOUNT[np.bitwise_xor(hashes, one)].sum(axis=1, dtype=np.int32)


class NearDuplicates:
    """Remembers the hashes kept so far; says whether a new one is within ``max_distance`` bits of any."""

    def __init__(self, max_distance: int, size: int = 16) -> None:
        self.max_distance = max_distance
        self.size = size
        self.kept = np.zeros((0, size * size // 8), np.uint8)

    def seen(self, image: np.ndarray) -> tuple[bool, np.ndarray]:
        """(whether ``image`` is a near-duplicate of a kept one, its hash); a new one is kept."""
        code = dhash(image, self.size)
        if len(self.kept) and int(distances(self.kept, code).min()) <= self.max_distance:
            return True, code
        self.kept = np.vstack([self.kept, code[None]])
        return False, code

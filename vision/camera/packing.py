"""A checkpoint's arrays as bytes, written with one copy: a short header, then each array's raw bytes.

Every ``storage.checkpoint_interval`` seconds of stream time each camera packs its image-sized models
(the litter background model's two backgrounds and its sparse per-pixel bookkeeping, the heatmap).
As an npz (a zip of ``.npy`` members) every array was copied four times over (into its ``.npy``,
out of it, into the archive, out of the archive) and a sample of each deflated to decide whether
deflating it paid: most of a checkpoint's cost (benchmarks/analysis_cost.md), for nothing since the
backgrounds' float32 pixels hardly shrink and the rest is small. Here the bytes are MAGIC, a JSON
header (each array's name, dtype and shape, in order) and the arrays' C-order bytes one after the
other. Nothing is rounded and the same arrays give the same bytes. :func:`unpack` also reads the
npz checkpoints written before (by ``np.savez_compressed`` or this module's zip).
"""

from __future__ import annotations

import io
import json
import math
import struct

import numpy as np

MAGIC = b"street-vision arrays 1\n"
LENGTH = struct.Struct("<I")  # the JSON header's length in bytes, after MAGIC


def pack(arrays: dict[str, np.ndarray]) -> bytes:
    """``arrays`` (numbers, booleans, fixed-size strings) as bytes for :func:`unpack`."""
    header, parts = [], []
    for name, array in arrays.items():
        a = np.asarray(array, order="C")  # (ascontiguousarray would make a 0-d array 1-d)
        if a.dtype.hasobject or a.dtype.names is not None:
            raise ValueError(f"checkpoint array {name!r}: dtype {a.dtype} cannot be packed")
        header.append([name, a.dtype.str, list(a.shape)])
        parts.append(a.reshape(-1).view(np.uint8))
    text = json.dumps(header).encode()
    return b"".join([MAGIC, LENGTH.pack(len(text)), text, *parts])


def unpack(data: bytes) -> dict[str, np.ndarray]:
    """The arrays of :func:`pack`'s bytes, or of an older npz checkpoint; ValueError if damaged."""
    if not data.startswith(MAGIC):
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:  # written before: an npz
            return {name: npz[name] for name in npz.files}
    start = len(MAGIC) + LENGTH.size
    if len(data) < start:
        raise ValueError(f"checkpoint arrays: {len(data)} bytes, too short for a header")
    (length,) = LENGTH.unpack_from(data, len(MAGIC))
    try:
        header = json.loads(data[start : start + length])
    except ValueError as error:
        raise ValueError(f"checkpoint arrays: unreadable header ({error})") from None
    offset, out = start + length, {}
    for name, descr, shape in header:
        dtype = np.dtype(descr)
        if dtype.hasobject:
            raise ValueError(f"checkpoint array {name!r}: dtype {dtype} cannot be unpacked")
        count = math.prod(shape)
        end = offset + count * dtype.itemsize
        if end > len(data):
            raise ValueError(f"checkpoint array {name!r}: runs past the end of its {len(data)} bytes")
        out[name] = np.frombuffer(data, dtype, count, offset).reshape(shape).copy()
        offset = end
    if offset != len(data):
        raise ValueError(f"checkpoint arrays: {len(data) - offset} bytes after the last array")
    return out

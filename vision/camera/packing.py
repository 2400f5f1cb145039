"""A checkpoint's arrays as npz bytes, written cheaply: each array deflated only where that pays.

``np.savez_compressed`` deflates every array at zlib's default level. A background model's float32
pixels hardly shrink that way, yet deflating them was most of a checkpoint's cost: tens of
milliseconds per camera every ``storage.checkpoint_interval``, where storing them as they are costs
a tenth to a fifth of that for 1.2-1.3x the bytes (benchmarks/checkpoints.md). Here
every array is still one ``.npy`` member of a zip, so ``np.load`` reads it as before, and reads the
checkpoints ``np.savez_compressed`` wrote; a member is deflated at level 1 when a sample of its
bytes shrinks to under ``PAYS`` of its size (timers, NaN-filled arrival times, the heatmap: mostly
one value), and stored as it is otherwise. Nothing is rounded: what is packed is what comes back.
"""

from __future__ import annotations

import io
import zipfile
import zlib

import numpy as np

PAYS = 0.75  # deflate a member whose sample shrinks below this share of its size
SAMPLE = 2048  # bytes taken at each of SLICES places spread over a member
SLICES = 4
EPOCH = (1980, 1, 1, 0, 0, 0)  # members' time stamp: the same arrays give the same bytes


def pack(arrays: dict[str, np.ndarray]) -> bytes:
    """``arrays`` as npz bytes (``name.npy`` members), each deflated or stored by what pays."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)
            data = member.getvalue()
            method = zipfile.ZIP_DEFLATED if _deflates(data) else zipfile.ZIP_STORED
            archive.writestr(zipfile.ZipInfo(f"{name}.npy", EPOCH), data, method, 1)
    return buffer.getvalue()


def unpack(data: bytes) -> dict[str, np.ndarray]:
    """The arrays of npz bytes, whichever way they were written."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


def _deflates(data: bytes) -> bool:
    """Whether deflating ``data`` pays, judged on a few slices of it (small members: always)."""
    if len(data) <= SAMPLE * SLICES:
        return True
    step = len(data) // SLICES
    sample = b"".join(data[i * step : i * step + SAMPLE] for i in range(SLICES))
    return len(zlib.compress(sample, 1)) < PAYS * len(sample)

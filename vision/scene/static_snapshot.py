"""A static-object model's state as a camera snapshot's arrays, and back (vision/camera/unit.py).

Without it a restarted camera would take a bag already lying there for background. The
per-pixel bookkeeping (timers, arrival times, seen alone, unsure) is at rest (0, NaN, False)
wherever nothing changed, nearly everywhere: it is kept only at the pixels ``at`` (flat
indices) where one of them is not, as ``NAME_at``; deflating it whole cost most of a
checkpoint (benchmarks/analysis_cost.md), unless so many pixels are busy (a light change over
the whole zone) that the dense arrays are smaller. The fast background is kept as uint8 when
it holds whole grey levels (a look every ``fast_seconds`` or more makes it the last frame): a
quarter of its bytes, a third off a checkpoint at the capacity benchmark's settings
(benchmarks/checkpoints.md). Nothing is rounded: :func:`load_state` gets every value back.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from vision.scene.static_objects import StaticObjects

# the per-pixel bookkeeping, at rest where nothing changed: its rest value and dtype
REST: dict[str, tuple[float | bool, type]] = {
    "timer": (0.0, np.float32),
    "arrived": (np.nan, np.float64),
    "seen": (False, np.bool_),
    "unsure": (False, np.bool_),
}


def state_arrays(model: StaticObjects) -> dict[str, np.ndarray]:
    """The ``model``'s state (both backgrounds, the pixel timers, its scale) as a snapshot's arrays;
    none before its first frame."""
    if model.fast is None or model.slow is None or model.timer is None or model.scale is None:
        return {}
    if model.arrived is None or model.seen is None:
        return {}
    arrays = {
        "fast": _whole(model.fast),
        "slow": model.slow,
        "last_pts": np.array(model.last_pts),
        "unseen": np.array(np.nan if model.unseen is None else model.unseen),
        "scale": np.array(model.scale),
        "region": np.array(model.region or (0.0, 0.0, 1.0, 1.0)),
    }
    sparse = {"timer": model.timer, "arrived": model.arrived, "seen": model.seen}
    if model.unsure is not None and model.coarse is not None:
        sparse["unsure"], arrays["coarse"] = model.unsure, np.array(model.coarse)
    at = _busy(model, sparse).astype(np.int32)
    per_pixel = sum(a.itemsize for a in sparse.values())
    if len(at) * (at.itemsize + per_pixel) >= model.timer.size * per_pixel:  # most busy: dense is smaller
        return arrays | sparse
    arrays["at"] = at
    arrays |= {f"{name}_at": a.ravel()[at] for name, a in sparse.items()}
    return arrays


def load_state(model: StaticObjects, arrays: dict[str, np.ndarray]) -> bool:
    """Take back :func:`state_arrays` (or an older snapshot's, with dense bookkeeping) into ``model``;
    False (and nothing changed) if they are not its (of another region)."""
    fast, slow, scale = (arrays.get(k) for k in ("fast", "slow", "scale"))
    if fast is None or slow is None or scale is None or fast.ndim != 2 or fast.shape != slow.shape:
        return False
    region = arrays.get("region")
    if region is None or not np.allclose(region, model.region or (0.0, 0.0, 1.0, 1.0)):
        return False
    dense = _dense(arrays, fast.shape)
    if dense is None:
        return False
    timer, arrived, seen, unsure = (dense[name] for name in REST)
    assert timer is not None
    # C order, whatever the snapshot's: a look works on the bookkeeping through flat views (ravel)
    model.fast, model.slow, model.timer = (a.astype(np.float32, order="C") for a in (fast, slow, timer))
    model.arrived = np.full(timer.shape, np.nan) if arrived is None else arrived.astype(np.float64, order="C")
    seen = timer > 0 if seen is None else seen  # an older snapshot's: timed = seen
    model.seen = seen.astype(bool, order="C")
    coarse = arrays.get("coarse")
    ok = unsure is not None and coarse is not None
    model.unsure = unsure.astype(bool) if ok else None
    model.coarse = (int(coarse[0]), int(coarse[1])) if ok else None
    model.last_pts, model.scale, model.sized = float(arrays["last_pts"]), float(scale), True
    unseen = float(arrays.get("unseen", np.nan))
    model.unseen = None if math.isnan(unseen) else unseen
    return True


def _busy(model: StaticObjects, sparse: dict[str, np.ndarray]) -> np.ndarray:
    """The flat indices (ascending) of the pixels whose ``sparse`` bookkeeping is not at rest. Looked for
    among the pixels the last look left (``model.unrested()``, with any unsure one) where the model knows
    them: a few hundred gathered, not three passes over every pixel of arrays a checkpoint finds cold."""
    at = model.unrested()
    if at is not None and "unsure" in sparse:
        at = np.union1d(at, np.flatnonzero(sparse["unsure"]))
    values = sparse if at is None else {name: a.ravel()[at] for name, a in sparse.items()}
    busy = (values["timer"] != 0) | ~np.isnan(values["arrived"]) | values["seen"]
    if "unsure" in values:
        busy |= values["unsure"]
    return np.flatnonzero(busy) if at is None else at[busy]


def _whole(grey: np.ndarray) -> np.ndarray:
    """``grey`` as uint8 when every value is a whole grey level (cast back: the same values), else as is."""
    with np.errstate(invalid="ignore"):  # NaN or out of range: the values differ, it stays as it is
        small = grey.astype(np.uint8)
    return small if np.array_equal(small, grey) else grey


def _dense(arrays: dict[str, np.ndarray], shape: tuple[int, ...]) -> dict[str, np.ndarray | None] | None:
    """A snapshot's timers, arrival times, seen and unsure as arrays of ``shape`` (None: the snapshot has
    none that fits), from :func:`state_arrays`'s sparse form or an older snapshot's dense arrays;
    None without timers."""
    at = arrays.get("at")
    size = math.prod(shape)
    if at is not None and (at.ndim != 1 or (len(at) and (at.min() < 0 or at.max() >= size))):
        return None
    out: dict[str, np.ndarray | None] = {}
    for name, (rest, dtype) in REST.items():
        values = arrays.get(name if at is None else f"{name}_at")
        if values is None or values.shape != (shape if at is None else at.shape):
            out[name] = None
        elif at is None:
            out[name] = values
        else:
            full = np.full(size, rest, dtype)
            full[at] = values
            out[name] = full.reshape(shape)
    return None if out["timer"] is None else out

"""The litter model's per-pixel passes (vision/scene/static_objects.py), compiled with Numba.

A look's bookkeeping was some forty numpy calls, most of them a pass over the zone's arrays: each a
few microseconds of call and a walk over memory that, at 100 cameras, is long out of cache by the
model's next look. Here the same float32 / float64 arithmetic runs in four loops: the gain's samples;
one pass over every pixel that marks what changed and teaches both backgrounds; and, over the changed
pixels alone (and the last look's), one that keeps their bookkeeping and sets the rest to rest, and
one that times them. Each value is the one numpy's elementwise operations gave (the scalars arrive
cast as numpy casts a Python number against a float32 array: see ``StaticObjects._look``), so the
state and the blobs are the same, look by look (tests/test_static_objects.py holds the numpy passes
to compare with; benchmarks/analysis_cost.md: "arrays differ" 0 against the code before).

Compiled when first imported on a machine (a few seconds, the GIL held: ``load_kernels`` in
vision/kernels.py imports it as a pipeline or a model is set up, before frames flow) and
cached beside this file (or in Numba's user cache where that is read-only); ``nogil``: the loops let
the other threads run.
"""

from __future__ import annotations

import math

import numpy as np
from numba import boolean, float32, float64, intp, njit

# one compiled version each, made (or read from the cache) when this module is imported: contiguous
# arrays, float32 scalars where numpy casts a Python number to float32 (another type is refused, not
# compiled again mid-run)
IMAGE = float32[:, ::1]
F32, F64, FLAGS, INDICES = float32[::1], float64[::1], boolean[::1], intp[::1]
SIGNATURES = {
    "gain_samples": intp(IMAGE, IMAGE, IMAGE, float32, intp, F32),
    "mark": intp(F32, F32, F32, FLAGS, float32, float32, float32, float32, FLAGS, FLAGS, INDICES),
    "carry": intp(F64, FLAGS, F32, INDICES, INDICES, boolean, float64, float64),
    "settle": boolean(
        F32, F32, F64, FLAGS, F32, FLAGS, FLAGS, INDICES, float64, float32, float32, float64, float32, float32
    ),
}


@njit(SIGNATURES["gain_samples"], cache=True, nogil=True)
def gain_samples(
    grey: np.ndarray, fast: np.ndarray, slow: np.ndarray, threshold: np.float32, step: int, out: np.ndarray
) -> int:
    """Into ``out``: grey / slow (float32) at every ``step``-th row and column where the pixel is calm
    (within ``threshold`` of the fast background) and the slow background is above 8; return how many."""
    height, width = grey.shape
    k = 0
    for r in range(0, height, step):
        for c in range(0, width, step):
            s = slow[r, c]
            g = grey[r, c]
            if abs(g - fast[r, c]) < threshold and s > 8:
                out[k] = g / s
                k += 1
    return k


@njit(SIGNATURES["mark"], cache=True, nogil=True)
def mark(
    grey: np.ndarray,
    fast: np.ndarray,
    slow: np.ndarray,
    sure: np.ndarray,
    gain: np.float32,
    threshold: np.float32,
    fast_rate: np.float32,
    slow_rate: np.float32,
    changed: np.ndarray,
    calm: np.ndarray,
    at: np.ndarray,
) -> int:
    """Flat arrays of one size (``sure``: empty, or where a blurred background still counts a change).
    Writes ``calm`` (matches the fast background) and ``changed`` (differs from the slow one in this
    light: ``slow * gain``), the changed pixels' flat indices to ``at``; returns how many. Both
    backgrounds learn in the same pass: the fast one everywhere by ``fast_rate`` (1: it takes the
    frame), the slow one where unchanged by ``slow_rate``, towards the frame over ``gain``."""
    checked = sure.size > 0
    scaled = fast_rate != 1
    for i in range(grey.size):  # branches the loop does not change: compiled to vector instructions
        g, f, s = grey[i], fast[i], slow[i]
        calm[i] = abs(g - f) < threshold
        change = abs(g - s * gain) >= threshold
        if checked:
            change &= sure[i]
        changed[i] = change
        step = g - f
        if scaled:
            step *= fast_rate
        fast[i] = f + step
        lerp = g / gain
        lerp -= s
        lerp *= slow_rate
        slow[i] = s if change else s + lerp
    k = 0
    for i in range(changed.size):
        if changed[i]:
            at[k] = i
            k += 1
    return k


@njit(SIGNATURES["carry"], cache=True, nogil=True)
def carry(
    arrived: np.ndarray,
    seen: np.ndarray,
    timer: np.ndarray,
    at: np.ndarray,
    last: np.ndarray,
    known: bool,
    pts: float,
    dark: float,
) -> int:
    """The bookkeeping (flat) of the pixels changed now (``at``) kept, every other pixel's set to rest (no
    arrival, not seen, no timer): only the ``last`` look's changed pixels where that is ``known`` (the rest
    is at rest already), else all. A changed pixel's arrival moves on by ``dark`` seconds and is ``pts``
    if it had none. Returns how many of them were not seen alone yet. Only the changed pixels and the
    last look's are read: the three arrays are most of a model's memory, cold at a look."""
    count = at.size
    kept_arrived = np.empty(count, np.float64)
    kept_seen = np.empty(count, np.bool_)
    kept_timer = np.empty(count, np.float32)
    for j in range(count):
        i = at[j]
        kept_arrived[j], kept_seen[j], kept_timer[j] = arrived[i], seen[i], timer[i]
    if known:
        for i in last:
            arrived[i], seen[i], timer[i] = np.nan, False, 0
    else:
        arrived[:] = np.nan
        seen[:] = False
        timer[:] = 0
    among = 0
    for j in range(count):
        i = at[j]
        a = kept_arrived[j]
        if dark != 0.0:
            a += dark
        if math.isnan(a):
            a = pts
        arrived[i], seen[i], timer[i] = a, kept_seen[j], kept_timer[j]
        if not kept_seen[j]:
            among += 1
    return among


@njit(SIGNATURES["settle"], cache=True, nogil=True)
def settle(
    grey: np.ndarray,
    slow: np.ndarray,
    arrived: np.ndarray,
    seen: np.ndarray,
    timer: np.ndarray,
    calm: np.ndarray,
    touched: np.ndarray,
    at: np.ndarray,
    pts: float,
    spent: np.float32,
    gain: np.float32,
    catch_up: float,
    absorb: np.float32,
    least: np.float32,
) -> bool:
    """After :func:`carry`, at the changed pixels (``at``): one not seen alone before is now, unless
    ``touched`` (empty: none) says its changed region touched someone's box, and if it arrived over
    ``catch_up`` seconds ago it is timed from now; a seen pixel that is calm counts ``spent`` seconds
    more, or, at its first count, the seconds since it arrived (at most ``catch_up``); an unseen one
    none; one that reaches ``absorb`` becomes slow background (the frame over ``gain``: a fixture).
    Returns whether any timer reached ``least``."""
    guarded = touched.size > 0
    static = False
    for i in at:
        alone = seen[i]
        if not alone and not (guarded and touched[i]):
            alone = True
            seen[i] = True
            if pts - arrived[i] > catch_up:
                arrived[i] = pts
        t = timer[i]
        if not alone:
            t = np.float32(0.0)
        elif calm[i]:
            if t == 0:
                t = np.float32(min(pts - arrived[i], catch_up))
            else:
                t += spent
        if t >= absorb:
            slow[i] = grey[i] / gain
            t = np.float32(0.0)
        timer[i] = t
        if t >= least:
            static = True
    return static

"""Constant-velocity Kalman filter over many boxes at once, stepped by stream seconds.

State per track: centre x, centre y, width, height and their velocities in pixels per
second. Noise is proportional to the box size (a near, large person moves more pixels
than a far one), with ByteTrack's per-frame values at 30 fps turned into per-second
rates, so a camera sampled at 2 fps and one at 30 fps predict the same way and a
missed frame simply means a longer ``dt``.

The four coordinates never mix (the motion, its noise and the measurement act on each
coordinate and its own velocity alone), so the 8x8 covariance is four independent 2x2
blocks: it is kept as [n, 3, 4] (position variance, position-velocity covariance,
velocity variance of each coordinate), and predict and correct are elementwise over all
tracks: no batched 8x8 products and no linear solve per frame.
"""

from __future__ import annotations

import numpy as np

POS_VAR = 0.075  # (size/20)^2 per frame at 30 fps, as a rate per second
VEL_VAR = 1.05  # (size/160 per frame)^2 per frame at 30 fps, in (size/s)^2 per second
MEAS_STD = 1.0 / 20.0  # detector box noise, relative to the box size
INIT_VEL_STD = 1.875  # 10 * size/160 per frame at 30 fps, in size/s: a new track's speed is unknown
MIN_SIZE = 1.0  # pixels: a predicted box never collapses
PP, PV, VV = 0, 1, 2  # rows of a track's [3, 4] covariance
_WHWH = np.array([2, 3, 2, 3])  # state columns of (w, h, w, h)
_GAIN_ROWS, _COV_ROWS = np.array([0, 0, 1]), np.array([PP, PV, PV])  # P' = P - K P, row by row (correct)


def _sizes(mean: np.ndarray) -> np.ndarray:
    """[n, 4] (w, h, w, h) scales for the position and velocity noise."""
    return np.maximum(mean.take(_WHWH, axis=1), MIN_SIZE)  # one gather (take: a third of [:, _WHWH]'s cost)


def to_state(xyxy: np.ndarray) -> np.ndarray:
    """[n, 4] xyxy boxes -> [n, 4] float64 (cx, cy, w, h) measurements."""
    out = np.empty((len(xyxy), 4))  # written in place, in float64 (dtype): no astype, no concatenate
    np.add(xyxy[:, :2], xyxy[:, 2:], out=out[:, :2], dtype=np.float64)
    out[:, :2] *= 0.5
    np.subtract(xyxy[:, 2:], xyxy[:, :2], out=out[:, 2:], dtype=np.float64)
    return out


def to_xyxy(mean: np.ndarray) -> np.ndarray:
    """[n, 8] states -> [n, 4] float32 xyxy boxes."""
    half = np.maximum(mean[:, 2:4], MIN_SIZE) * 0.5
    out = np.empty((len(mean), 4), np.float32)  # written in place: no concatenate, no astype copy
    np.subtract(mean[:, :2], half, out=out[:, :2], casting="unsafe")  # float64 result rounded, as astype
    np.add(mean[:, :2], half, out=out[:, 2:], casting="unsafe")
    return out


def initiate(xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """States for new tracks: the box itself, zero velocity, with a wide velocity uncertainty."""
    z = to_state(xyxy)
    mean = np.concatenate([z, np.zeros_like(z)], axis=1)
    size = _sizes(mean)
    cov = np.zeros((len(z), 3, 4))
    cov[:, PP] = (2 * MEAS_STD * size) ** 2
    cov[:, VV] = (INIT_VEL_STD * size) ** 2
    return mean, cov


def predict(mean: np.ndarray, cov: np.ndarray, dt: float, lost: np.ndarray, moving: np.ndarray) -> None:
    """Advance every state by ``dt`` seconds in place, each moving on its velocity for its ``moving``
    seconds of them (a lost track stops moving a while after it was last seen: vision/track/tracker.py);
    ``lost`` rows (tracks missed on the previous frame) stop growing or shrinking, as in ByteTrack, so
    an occlusion cannot collapse the box. The uncertainty grows by the whole ``dt``."""
    if len(mean) == 0 or dt <= 0:
        return
    mean[lost, 6:8] = 0.0
    mean[:, :4] += moving[:, None] * mean[:, 4:]
    size2 = _sizes(mean) ** 2
    pp, pv, vv = cov[:, PP], cov[:, PV], cov[:, VV]  # views: P' = F P F^T + Q, per coordinate
    step = dt * vv  # before vv grows
    pp += dt * (2.0 * pv + step) + POS_VAR * dt * size2
    pv += step
    vv += VEL_VAR * dt * size2


def correct(mean: np.ndarray, cov: np.ndarray, xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Posterior states of ``n`` tracks given their matched boxes (batched Kalman update)."""
    innovation = to_state(xyxy)
    innovation -= mean[:, :4]
    s = cov[:, PP] + (MEAS_STD * _sizes(mean)) ** 2  # innovation variance per coordinate (S is diagonal)
    gain = cov[:, :VV] / s[:, None]  # [n, 2, 4]: position and velocity gains (PP / S, PV / S)
    new_mean = mean + (gain * innovation[:, None]).reshape(len(mean), 8)
    # PP - Kp PP, PV - Kp PV, VV - Kv PV (take along axis 1: a third of fancy indexing's cost)
    new_cov = cov - gain.take(_GAIN_ROWS, axis=1) * cov.take(_COV_ROWS, axis=1)
    return new_mean, new_cov

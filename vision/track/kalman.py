"""Constant-velocity Kalman filter over many boxes at once, stepped by stream seconds.

State per track: centre x, centre y, width, height and their velocities in pixels per
second. Noise is proportional to the box size (a near, large person moves more pixels
than a far one), with ByteTrack's per-frame values at 30 fps turned into per-second
rates, so a camera sampled at 2 fps and one at 30 fps predict the same way and a
missed frame simply means a longer ``dt``.
"""

from __future__ import annotations

import numpy as np

POS_VAR = 0.075  # (size/20)^2 per frame at 30 fps, as a rate per second
VEL_VAR = 1.05  # (size/160 per frame)^2 per frame at 30 fps, in (size/s)^2 per second
MEAS_STD = 1.0 / 20.0  # detector box noise, relative to the box size
INIT_VEL_STD = 1.875  # 10 * size/160 per frame at 30 fps, in size/s: a new track's speed is unknown
MIN_SIZE = 1.0  # pixels: a predicted box never collapses
_EYE4, _EYE8 = np.eye(4), np.eye(8)  # made once, not per frame
_DIAG4, _DIAG8 = np.arange(4), np.arange(8)


def _sizes(mean: np.ndarray) -> np.ndarray:
    """[n, 4] (w, h, w, h) scales for the position and velocity noise."""
    wh = np.maximum(mean[:, 2:4], MIN_SIZE)
    return np.concatenate([wh, wh], axis=1)


def to_state(xyxy: np.ndarray) -> np.ndarray:
    """[n, 4] xyxy boxes -> [n, 4] (cx, cy, w, h) measurements."""
    xyxy = xyxy.astype(np.float64)
    return np.concatenate([(xyxy[:, :2] + xyxy[:, 2:]) * 0.5, xyxy[:, 2:] - xyxy[:, :2]], axis=1)


def to_xyxy(mean: np.ndarray) -> np.ndarray:
    """[n, 8] states -> [n, 4] float32 xyxy boxes."""
    half = np.maximum(mean[:, 2:4], MIN_SIZE) * 0.5
    return np.concatenate([mean[:, :2] - half, mean[:, :2] + half], axis=1).astype(np.float32)


def initiate(xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """States for new tracks: the box itself, zero velocity, with a wide velocity uncertainty."""
    z = to_state(xyxy)
    mean = np.concatenate([z, np.zeros_like(z)], axis=1)
    size = _sizes(mean)
    std = np.concatenate([2 * MEAS_STD * size, INIT_VEL_STD * size], axis=1)
    cov = np.zeros((len(z), 8, 8))
    cov[:, _DIAG8, _DIAG8] = std**2
    return mean, cov


def predict(mean: np.ndarray, cov: np.ndarray, dt: float, lost: np.ndarray) -> None:
    """Advance every state by ``dt`` seconds in place; ``lost`` rows (tracks missed on the previous
    frame) stop growing or shrinking, as in ByteTrack, so an occlusion cannot collapse the box."""
    if len(mean) == 0 or dt <= 0:
        return
    mean[lost, 6:8] = 0.0
    mean[:, :4] += dt * mean[:, 4:]
    transition = _EYE8.copy()
    transition[:4, 4:] = dt * _EYE4
    size = _sizes(mean)
    cov[:] = transition @ cov @ transition.T
    cov[:, _DIAG8, _DIAG8] += np.concatenate([POS_VAR * size**2, VEL_VAR * size**2], axis=1) * dt


def correct(mean: np.ndarray, cov: np.ndarray, xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Posterior states of ``n`` tracks given their matched boxes (batched Kalman update)."""
    z = to_state(xyxy)
    innovation_cov = cov[:, :4, :4].copy()
    innovation_cov[:, _DIAG4, _DIAG4] += (MEAS_STD * _sizes(mean)[:, :4]) ** 2
    gain_t = np.linalg.solve(innovation_cov, cov[:, :4, :])  # K^T = S^-1 H P, as P and S are symmetric
    gain = np.swapaxes(gain_t, 1, 2)
    new_mean = mean + (gain @ (z - mean[:, :4])[:, :, None])[:, :, 0]
    new_cov = cov - gain @ cov[:, :4, :]
    return new_mean, new_cov

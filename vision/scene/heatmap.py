"""A decaying heatmap of where people stand, per camera, on the stream clock.

Heat decays with a half-life in stream seconds, so a replayed recording renders the
same map as the live camera did; rendering (PNG overlay) happens only on request.
"""

from __future__ import annotations

import cv2
import numpy as np


class Heatmap:
    """Accumulates anchor points on a coarse grid; cheap per frame, smoothed when rendered."""

    def __init__(self, half_life: float, columns: int = 96, rows: int = 72) -> None:
        self.half_life = half_life
        self.grid = np.zeros((rows, columns), np.float32)
        self.last_pts: float | None = None

    def copy(self) -> Heatmap:
        """A snapshot that later frames do not change (for a published camera view, after every frame):
        it shares the grid, which :meth:`add` replaces rather than changes, so nothing is copied."""
        heatmap = Heatmap.__new__(Heatmap)
        heatmap.half_life, heatmap.grid, heatmap.last_pts = self.half_life, self.grid, self.last_pts
        return heatmap

    def add(self, points: np.ndarray, width: int, height: int, pts: float) -> None:
        """Decay to ``pts``, then add one unit of heat per [N, 2] pixel point, into a new grid (a
        snapshot taken by :meth:`copy` holds the old one)."""
        grid = self.grid
        if self.last_pts is not None and pts > self.last_pts:
            grid = grid * np.float32(0.5 ** ((pts - self.last_pts) / self.half_life))
        self.last_pts = pts
        if len(points):
            rows, columns = grid.shape
            # np.minimum(np.maximum()): np.clip's wrapper costs a few times the two, at a handful of points
            col = np.minimum(np.maximum((points[:, 0] * (columns / width)).astype(np.int64), 0), columns - 1)
            row = np.minimum(np.maximum((points[:, 1] * (rows / height)).astype(np.int64), 0), rows - 1)
            grid = grid.copy() if grid is self.grid else grid
            np.add.at(grid, (row, col), 1.0)
        grid.flags.writeable = False  # shared with the snapshots: never changed in place
        self.grid = grid

    def render(self, background: np.ndarray, opacity: float = 0.55) -> np.ndarray:
        """The heat over a BGR frame, as a BGR image of the frame's size."""
        h, w = background.shape[:2]
        heat = cv2.GaussianBlur(self.grid, (0, 0), sigmaX=2.0)
        peak = float(heat.max())
        if peak <= 0:
            return background.copy()
        # square root: where people pass shows, not only where one person stood still
        norm = cv2.resize(np.sqrt(heat / peak), (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 1)
        colour = cv2.applyColorMap((norm * 255).astype(np.uint8), cv2.COLORMAP_JET)
        alpha = (norm * opacity)[..., None]
        return (background * (1 - alpha) + colour * alpha).astype(np.uint8)

    def png(self, background: np.ndarray) -> bytes:
        ok, data = cv2.imencode(".png", self.render(background))
        if not ok:
            raise ValueError("could not encode the heatmap as PNG")
        return data.tobytes()

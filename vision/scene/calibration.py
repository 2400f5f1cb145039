"""Ground-plane calibration: four image points with their positions in metres.

A homography from normalized image coordinates to the ground plane turns a zone's
polygon into square metres, so crowd levels can be set in people per m² (Fruin's
levels of service) rather than in a head count that depends on the camera's view.
"""

from __future__ import annotations

import cv2
import numpy as np

from vision.geometry import polygon_area


class GroundPlane:
    """Maps normalized image points to metres on the ground."""

    def __init__(self, image_points: np.ndarray, world_points: np.ndarray) -> None:
        self.homography = cv2.getPerspectiveTransform(
            np.asarray(image_points, np.float32), np.asarray(world_points, np.float32)
        )

    def to_world(self, points: np.ndarray) -> np.ndarray:
        """[N, 2] normalized image points -> [N, 2] metres."""
        pts = np.asarray(points, np.float64).reshape(-1, 1, 2)
        return cv2.perspectiveTransform(pts, self.homography).reshape(-1, 2)

    def area_m2(self, polygon: np.ndarray) -> float:
        """Ground area of a polygon given in normalized image coordinates."""
        return polygon_area(self.to_world(polygon))

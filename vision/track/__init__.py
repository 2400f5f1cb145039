"""Multi-object tracking per camera: track ids, dwell times and stationary objects for the rules."""

from vision.track.config import TrackerConfig
from vision.track.table import BoxHistory, TrackTable
from vision.track.tracker import Tracker

__all__ = ["BoxHistory", "TrackTable", "Tracker", "TrackerConfig"]

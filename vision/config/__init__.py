"""The one YAML file: pydantic models, loading, and errors that name the key and the line.

Every field documents its default; unknown keys are errors so that a typo is never
silently ignored. Relative paths (file cameras, model card, data folder) resolve
against the folder of the config file, so a config means the same from any cwd.

A module per section (``camera``, ``ingest``, ``regions``, ``detector``, ``events``, ``health``,
``dispatch``, ``storage``, ``cluster``; ``root`` for the whole file), the value types they share
(``base``), and the reading (``loading``: bounded YAML, ``${ENV}``, errors with lines; ``defaults``:
``camera_defaults`` and ``groups``). A stage's own settings that only it reads live with the stage
(vision/track/config.py, vision/scene/motion.py, the rules, vision/dispatch/targets.py) and are
imported here; this package imports no stage through another. Callers import from here.
"""

from vision.config.base import NAME as NAME
from vision.config.base import Duration as Duration
from vision.config.base import Name as Name
from vision.config.base import Polygon as Polygon
from vision.config.base import StrictModel as StrictModel
from vision.config.camera import CalibrationConfig as CalibrationConfig
from vision.config.camera import CameraConfig as CameraConfig
from vision.config.camera import CameraDefaults as CameraDefaults
from vision.config.camera import HeatmapConfig as HeatmapConfig
from vision.config.camera import ZoneConfig as ZoneConfig
from vision.config.cluster import ClusterConfig as ClusterConfig
from vision.config.detector import DetectorConfig as DetectorConfig
from vision.config.dispatch import DispatchConfig as DispatchConfig
from vision.config.events import EventsConfig as EventsConfig
from vision.config.health import HealthConfig as HealthConfig
from vision.config.ingest import KEYFRAME_REST as KEYFRAME_REST
from vision.config.ingest import KEYFRAMES_READ_INTERVAL as KEYFRAMES_READ_INTERVAL
from vision.config.ingest import DecodeConfig as DecodeConfig
from vision.config.ingest import StreamConfig as StreamConfig
from vision.config.loading import ConfigError as ConfigError
from vision.config.loading import load_yaml as load_yaml
from vision.config.loading import parse_yaml as parse_yaml
from vision.config.regions import RegionsConfig as RegionsConfig
from vision.config.root import SHARED_KEYS as SHARED_KEYS
from vision.config.root import Config as Config
from vision.config.root import load_config as load_config
from vision.config.root import parse_config as parse_config
from vision.config.root import resolve_path as resolve_path
from vision.config.root import resolve_paths as resolve_paths
from vision.config.storage import ClipsConfig as ClipsConfig
from vision.config.storage import RetentionConfig as RetentionConfig
from vision.config.storage import StorageConfig as StorageConfig

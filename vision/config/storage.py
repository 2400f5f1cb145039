"""Where events, detections, snapshots and clips are kept, and for how long."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import ByteSize, Field, field_validator, model_validator

from vision.config.base import Duration, StrictModel
from vision.secrets import ENV_ALLOWED, CameraUrl, SecretUrl


class RetentionConfig(StrictModel):
    """How long things are kept, in wall-clock time (this is about disk); null keeps them forever.

    Open events are kept forever, with everything of theirs, and so is every message
    not yet delivered (pending or dead) with its event and transition.
    """

    detections: Duration | None = Field(86400.0, description="Detection rows (one per box per frame).")
    snapshots: Duration | None = Field(
        30 * 86400.0,
        description="Snapshot pictures (data_dir/snapshots/<event id>/), each counted from when it was "
        "taken; an event not resolved keeps those of its latest transition.",
    )
    delivered_outbox: Duration | None = Field(
        30 * 86400.0,
        description="Delivered webhook messages (an event's last message stays while the event is kept).",
    )
    closed_events: Duration | None = Field(
        30 * 86400.0,
        description="Resolved events with their transitions, messages and remote ticket id, counted "
        "from their last transition. Must be longer than events.reopen_window.",
    )
    interval: Duration = Field(60.0, description="Seconds between two pruning passes.")


class ClipsConfig(StrictModel):
    """Short videos (H.264 MP4) around each event's open, reopen and close, kept beside its snapshots.

    Each camera keeps its last ``before`` seconds of frames, downscaled, in memory; encoding
    happens only at transitions, off the pipeline's thread.
    """

    enabled: bool = Field(True, description="Write clips; false: no ring of frames, no clips.")
    before: float = Field(3.0, ge=0, le=30, description="Seconds of frames before the transition.")
    after: float = Field(3.0, ge=0, le=30, description="Seconds of frames after it (stream time).")
    fps: float = Field(
        5.0, gt=0, le=15, description="At most this many frames a second (at most the camera's detect_fps)."
    )
    width: int = Field(320, ge=64, le=1280, description="Pixels wide (height in proportion).")


class StorageConfig(StrictModel):
    """Where events, detections and snapshots are kept, and for how long."""

    data_dir: Annotated[Path, ENV_ALLOWED] = Field(
        Path("data"),
        description="Folder for the SQLite store (relative to the config file); may hold ${ENV_VAR} "
        "references.",
    )
    url: Annotated[CameraUrl | None, ENV_ALLOWED] = Field(
        None,
        description="A PostgreSQL server to keep the store in instead of SQLite, as "
        "postgresql://user@host:port/database; the password from the environment (PGPASSWORD, or a "
        "${ENV_VAR} reference in the URL, percent-encoded); never printed. Snapshots stay in data_dir. "
        "None: SQLite in data_dir.",
    )
    retention: RetentionConfig = Field(
        default_factory=RetentionConfig,
        description='Durations in seconds or as "15m", "24h", "30d".',
    )
    max_bytes: ByteSize | None = Field(
        None,
        description='Cap on the SQLite store (database pages in use and snapshots), e.g. "20GB"; when over, '
        "the oldest detections, then snapshots of closed events, then closed events go first. The WAL (cut "
        "back to 16 MB at each checkpoint) comes on top. None: no cap. Not with url: size PostgreSQL on the "
        "server.",
    )
    clips: ClipsConfig = Field(
        default_factory=ClipsConfig,
        description="Clips around transitions, kept and pruned like snapshots (retention.snapshots).",
    )
    detection_interval: float | None = Field(
        1.0,
        ge=0,
        description="Seconds of stream time between two frames of a camera whose detections (a row per box) "
        "are stored, besides every frame with a transition. The rows feed `dataset mine`'s uncertain frames "
        "and offline analysis; events carry their own boxes and need none. 0 stores every analysed frame, "
        "None no detections at all.",
    )
    checkpoint_interval: float = Field(
        10.0,
        gt=0,
        description="Seconds of stream time between snapshots of each camera's state (its rules' memory, "
        "timers, background model) in the store, besides the one committed with every transition: what a "
        "restart loses at most of timers under way.",
    )

    @field_validator("url")
    @classmethod
    def _postgres(cls, url: SecretUrl | None) -> SecretUrl | None:
        if url is not None and not re.match(r"^postgres(ql)?://[^/\s]*", url.get_secret_value()):
            raise ValueError("must be a postgresql:// URL (without it, the store is SQLite in data_dir)")
        return url

    @model_validator(mode="after")
    def _cap_on_sqlite(self) -> StorageConfig:
        if self.url is not None and self.max_bytes is not None:
            raise ValueError(
                "max_bytes caps the SQLite file: with url, size PostgreSQL on the server and use retention"
            )
        return self

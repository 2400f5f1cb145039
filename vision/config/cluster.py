"""Cameras sharded over a Ray cluster (docs/scaling.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from vision.config.base import StrictModel


class ClusterConfig(StrictModel):
    """Cameras sharded over a Ray cluster (docs/scaling.md); without it, one process runs every camera."""

    address: str = Field(
        "auto",
        description="The Ray cluster to join: auto (the one started on this machine with `ray start`), "
        "host:port of its head, or ray://host:port (Ray Client).",
    )
    namespace: str = Field(
        "street-vision",
        description="Ray namespace of the shard and replica actors; `cluster status` finds them there.",
    )
    shards: int = Field(2, ge=1, le=4096, description="Camera shards (Ray actors), each with its cameras.")
    virtual_nodes: int = Field(
        64,
        ge=1,
        le=4096,
        description="Points per shard on the hash ring that assigns cameras to shards: more spread the "
        "cameras more evenly.",
    )
    shard_cpus: float = Field(
        1.0, ge=0, le=1024, description="CPUs Ray reserves for each shard (decoding, tracking, rules)."
    )
    max_restarts: int = Field(
        -1, ge=-1, description="Times Ray restarts a shard or replica that died (-1: without limit)."
    )
    detector: Literal["local", "shared"] = Field(
        "local",
        description="local: each shard runs its own detector; shared: shards send frames to detector "
        "replicas that batch them.",
    )
    min_replicas: int = Field(1, ge=1, le=1024, description="shared: detector replicas started at once.")
    max_replicas: int = Field(
        1,
        ge=1,
        le=1024,
        description="shared: most replicas; one more is started while the replicas are all busy.",
    )
    scale_down_after: float = Field(
        60.0,
        ge=0,
        le=86400,
        description="shared: seconds the replicas must stay mostly idle (one fewer would have been at most "
        "50% busy) before one is stopped, never below min_replicas.",
    )
    replica_cpus: float = Field(1.0, ge=0, le=1024, description="shared: CPUs Ray reserves per replica.")
    replica_gpus: float | None = Field(
        None,
        ge=0,
        le=64,
        description="shared: GPUs per replica; null: 1 when detector.device is cuda or tensorrt, else 0.",
    )
    batch_size: int = Field(16, ge=1, le=1024, description="shared: most frames in one replica call.")
    batch_wait: float = Field(
        0.01,
        ge=0,
        le=1,
        description="shared: seconds a replica waits for more frames before running a batch that is "
        "not full.",
    )

    @model_validator(mode="after")
    def _replica_range(self) -> ClusterConfig:
        if self.max_replicas < self.min_replicas:
            raise ValueError(
                f"max_replicas ({self.max_replicas}) must be at least min_replicas ({self.min_replicas})"
            )
        return self

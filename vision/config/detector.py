"""The one detector all cameras share: its model, engine and batching."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from vision.config.base import StrictModel


class DetectorConfig(StrictModel):
    """The one detector shared by all cameras."""

    model: str = Field(
        "default",
        description="Path to a model card (YAML), an Ultralytics YOLO export (.onnx, or .pt with backend "
        "ultralytics; read with the card its metadata gives, as `models card` writes it) or 'default' for "
        "the embedded SSD MobileNet v2 COCO.",
    )
    backend: Literal["onnx", "openvino", "ultralytics"] = Field(
        "onnx",
        description="Inference engine: onnx (ONNX Runtime, any card), openvino (OpenVINO on the CPU, any "
        "ONNX card; needs the `openvino` extra: bfloat16 on CPUs with AMX, see precision) or ultralytics "
        "(Ultralytics/PyTorch, for YOLO .pt or .onnx files; needs the `yolo` extra).",
    )
    precision: Literal["auto", "f32", "bf16"] = Field(
        "auto",
        description="openvino: the arithmetic the CPU runs the model in. auto: OpenVINO's choice (bf16 on "
        "CPUs with AMX or AVX-512 BF16: the float YOLOv8n in 0.35 of ONNX Runtime's CPU time there, every "
        "box of ONNX Runtime's found, benchmarks/openvino_infer.md; else f32); f32: the file's own float32 "
        "(ONNX Runtime's boxes).",
    )
    device: Literal["cpu", "cuda", "tensorrt"] = Field(
        "cpu",
        description="onnx: ONNX Runtime execution provider (cuda/tensorrt need onnxruntime-gpu); "
        "ultralytics: cpu or cuda.",
    )
    threads: int = Field(
        0,
        ge=0,
        le=256,
        description="onnx: ONNX Runtime's intra-op threads per model call; 0: the cores shared out between "
        "the calls run at once (parallel), or every core for one call.",
    )
    parallel: int | None = Field(
        None,
        ge=1,
        le=64,
        description="onnx: model calls run at once, each on its own inference thread (every camera's frames "
        "still in order). Unset: one per core on the CPU but at most one per camera, each call on one "
        "thread (none to sync within a call: more frames per core when the cores also decode video, "
        "benchmarks/inference_threads.md); 1 on a GPU. ultralytics: 1 only.",
    )
    spin: bool = Field(
        False,
        description="onnx on the CPU: let ONNX Runtime's threads spin while they wait for work (its own "
        "default). Faster for one stream on an otherwise idle machine, but the spinning takes the cores "
        "that many cameras' readers and analysis need.",
    )
    min_score: float = Field(0.4, ge=0.0, le=1.0, description="Detections below this score are dropped.")
    iou: float = Field(
        0.7,
        gt=0.0,
        le=1.0,
        description="YOLO NMS: a box overlapping a better one of its class by more is dropped.",
    )
    max_det: int = Field(300, ge=1, le=10000, description="At most this many detections per frame.")
    max_batch: int = Field(
        32,
        ge=1,
        le=1024,
        description="onnx: most frames (or tiles) in one model call; a round of more runs in calls of this "
        "many (ONNX Runtime takes about 5 MB more per 300x300 frame of a batch, and per-frame time stops "
        "falling long before: benchmarks/ssd_batch.md). A model with a fixed batch size takes its own.",
    )
    classes: list[str] | None = Field(
        None, description="Keep only these labels (e.g. [person, bicycle]); None keeps all."
    )
    batch_wait: float = Field(
        0.0,
        ge=0.0,
        le=5.0,
        description="Seconds: while every camera is read in real time, an inference thread gathers at most "
        "this often, so the frames that fall due in between share one model call and are analysed back to "
        "back (warm caches: less CPU per frame, benchmarks/capacity_batch_wait.md) at the cost of up to "
        "this much lag. 0: each frame is gathered as soon as it is due. Files read as fast as possible "
        "never wait.",
    )

    @model_validator(mode="after")
    def _one_ultralytics_call(self) -> DetectorConfig:
        if self.backend == "ultralytics" and (self.parallel or 1) > 1:
            raise ValueError(
                f"parallel is {self.parallel}, but the ultralytics backend takes one call at a time: "
                "remove detector.parallel or use backend: onnx"
            )
        if self.backend == "openvino" and self.device != "cpu":
            raise ValueError(f"device is {self.device}, but the openvino backend runs on the cpu here")
        if self.backend != "openvino" and self.precision != "auto":
            raise ValueError(
                f"precision is {self.precision}, but only the openvino backend takes a precision"
            )
        return self

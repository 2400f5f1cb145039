"""How the detector spends the CPU: model calls at once, and ONNX Runtime threads per call.

One call spread over every core (ONNX Runtime's intra-op threads) syncs its threads at each
of the model's ~200 operators; on a machine whose cores also decode the cameras' streams,
a thread that lost its core holds the others up at every sync, so the one inference thread
was the bottleneck with a core left idle (benchmarks/capacity_yolo_street_sub.md: 8 cameras,
1.47 of 2 cores used). On the CPU, calls on one thread each, as many at once as there are
cores, keep every core busy and spend nothing on syncing threads within a call
(benchmarks/inference_threads.md); the pipeline runs that many inference threads
(vision/pipeline/inference.py), each camera's frames still in order.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


def cores() -> int:
    """The cores this process may run on (its affinity, else the machine's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux lists them (avx512f, amx_bf16, ...); empty where it does not."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            line = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return frozenset()
    return frozenset(line.partition(":")[2].split())


@dataclass(frozen=True, slots=True)
class CpuSplit:
    """``calls``: model calls run at once (inference threads); ``threads``: intra-op threads per call
    (0: ONNX Runtime's own choice, every core)."""

    calls: int
    threads: int


def split(
    parallel: int | None, threads: int, device: str, backend: str, available: int, cameras: int | None = None
) -> CpuSplit:
    """The split for ``detector.parallel`` and ``detector.threads`` on ``available`` cores, for a detector
    that serves ``cameras`` cameras (None: as many as need be).

    Unset ``parallel``: one call per core with ONNX Runtime (or OpenVINO) on the CPU, but no more than
    the cameras (a camera's frames are detected one after the other, so one camera keeps one call
    busy: it gets the cores in that call); else one (a GPU takes its calls one at a time;
    Ultralytics' predictor is not shared by threads). Unset ``threads`` (0) with several calls: the
    cores shared out between them, at least one each.
    """
    if backend not in ("onnx", "openvino"):
        return CpuSplit(1, threads)
    if device != "cpu":
        return CpuSplit(parallel or 1, threads)
    calls = parallel if parallel is not None else max(1, min(available, cameras or available))
    if threads == 0 and calls > 1:
        threads = max(1, available // calls)
    return CpuSplit(calls, threads)

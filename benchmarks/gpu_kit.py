"""The kit for issue 16's GPU capacity run (benchmarks/gpu_run.sh), built here, carried to the device.

The device machine (the `device` tool: one H200, Python 3.12, PyTorch; nothing can be fetched
there) lacks what the run needs beside the repository: PyAV, pydantic and Ultralytics (wheels,
installed there with ``--no-deps``), the street clips already encoded (no ffmpeg, no footage
there: ``--clips-dir``), and the float YOLOv8n both sides run (rebuilt from the INT8 export in
``../shared``, which does not travel). ``build`` makes them in ``.gpu/`` (ignored by git; name it
in the run's ``carry``); ``size`` says whether the tree that travels fits the tool's 64 MiB and,
if not, which tracked files the GPU run does not read, largest first, to leave out of the copy
that travels (docs/capacity.md, "A GPU", says how). The versions are this machine's, the ones the
tests ran with.

Usage: ``python3 benchmarks/gpu_kit.py build`` (a few minutes: three clips encoded twice), then
``python3 benchmarks/gpu_kit.py size``. A dry run of the device's command on this CPU, without
the wheels: ``OUT=/tmp/gpu NO_WHEELS=1 DEVICE=cpu CAMERAS=2 SECONDS_=10 bash benchmarks/gpu_run.sh``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parents[1])]

from farm import MAIN, SUB_BITRATE, encode  # noqa: E402  (beside this file)

from vision.tuning.rebuild import rebuild  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KIT = ROOT / ".gpu"
INT8 = ROOT.parent / "shared" / "data" / "models" / "yolov8n_coco_int8.onnx"
# what the device image lacks, for this repository's run (its image has numpy, torch, OpenCV, Numba,
# ONNX Runtime, PyYAML, pytest, psutil, matplotlib: /work/.library/device/KINDS.md)
WHEELS = (
    *("av", "pydantic", "pydantic-core", "annotated-types", "typing-inspection"),
    *("ultralytics", "ultralytics-thop"),
)
PYTHON = "3.12"  # the device's python3
CLIPS = ("vtest", "parking", "highway")  # the street load's footage (capacity.py --clips)
MAIN_BITRATE = "400k"  # ours opens main streams only for pictures, the peer never: small, to travel
LIMIT = 64 * 2**20  # bytes the device tool carries: the tree and the carried paths together
# tracked files the GPU run never reads (its model is the carried .pt, its clips the carried ones)
UNREAD = ("models/", "sample_videos/", "benchmarks/*.json")


def wheels(folder: Path) -> None:
    """This machine's versions of WHEELS, as wheels for the device's Python."""
    pins = [f"{name}=={metadata.version(name)}" for name in WHEELS]
    folder.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
    subprocess.run([*pip, "--python-version", PYTHON, "-d", str(folder), *pins], check=True)


def half_weights(folder: Path) -> Path:
    """The float YOLOv8n rebuilt from the INT8 export (``models rebuild``, as capacity.float_yolo makes
    it), its tensors stored in half precision (6.5 MB instead of 12.8: Ultralytics loads a checkpoint's
    model as float either way)."""
    import torch

    out = folder / "yolov8n_float.pt"
    rebuild(INT8, "yolov8n.yaml", out)
    checkpoint = torch.load(out, map_location="cpu", weights_only=False)
    checkpoint["model"] = checkpoint["model"].half()
    torch.save(checkpoint, out)
    return out


def build(kit: Path) -> None:
    wheels(kit / "whl")
    clips = kit / "clips"
    clips.mkdir(parents=True, exist_ok=True)
    for name in CLIPS:
        encode(name, clips, (*MAIN[:2], MAIN_BITRATE))
        encode(name, clips, (640, 360, SUB_BITRATE))
    half_weights(kit)
    size(kit)


def travelling() -> dict[str, int]:
    """The files the device tool sends without ``carry``: tracked, and untracked but not ignored."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    files = (ROOT / name for name in listed.split("\0") if name)
    return {str(f.relative_to(ROOT)): f.stat().st_size for f in files if f.is_file()}


def unread(path: str) -> bool:
    return any(Path(path).match(p) if "*" in p else path.startswith(p) for p in UNREAD)


def size(kit: Path) -> None:
    """Print what travels, and what to leave out of it where that is over the tool's limit."""
    tree = travelling()
    carried = sum(f.stat().st_size for f in kit.rglob("*") if f.is_file())
    total = sum(tree.values()) + carried
    mib = 2**20
    tracked = sum(tree.values())
    print(f"tree {tracked / mib:.1f} MiB + {kit.name}/ {carried / mib:.1f} MiB = {total / mib:.1f} MiB")
    if total <= LIMIT:
        print("fits the device tool's 64 MiB")
        return
    left = sorted((p for p in tree if unread(p)), key=tree.__getitem__, reverse=True)
    saved = sum(tree[p] for p in left)
    print(f"over 64 MiB: leave out {len(left)} tracked files the run does not read, {saved / mib:.1f} MiB:")
    print("  " + " ".join(UNREAD) + f" (largest: {', '.join(left[:3])})")
    verdict = "fits" if total - saved <= LIMIT else "still too large"
    print(f"then {(total - saved) / mib:.1f} MiB: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("build", "size"))
    parser.add_argument("--kit", type=Path, default=KIT, help="where the kit goes (default .gpu/)")
    args = parser.parse_args()
    if args.what == "build":
        if not INT8.is_file():
            raise SystemExit(f"{INT8} is missing: the float YOLOv8n is rebuilt from it")
        if shutil.which("ffmpeg") is None:
            raise SystemExit("ffmpeg is missing: it encodes the clips")
        build(args.kit)
    else:
        size(args.kit)


if __name__ == "__main__":
    main()

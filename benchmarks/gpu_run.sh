#!/usr/bin/env bash
# Issue 16's capacity run on the device's GPU, from the kit benchmarks/gpu_kit.py built in .gpu/ (carried):
# the wheels installed beside the image's Python, then benchmarks/capacity.py on the street footage,
# both sides running the float YOLOv8n through Ultralytics on CUDA, the cameras served over HTTP
# (no RTSP server there). Results in $OUT: env.txt, log.txt (each step's JSON as it ends, so a cut
# run keeps its steps), capacity_gpu.md/.json. Overrides: KIT, DEVICE (cpu: a dry run of the same path here),
# CAMERAS, SECONDS_, NO_WHEELS (use this machine's packages).
set -euo pipefail
cd "$(dirname "$0")/.."
KIT=${KIT:-.gpu}
: "${OUT:?OUT: the folder the results go to}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 YOLO_OFFLINE=1 YOLO_AUTOINSTALL=False YOLO_CONFIG_DIR=/tmp/ultralytics-config
if [ -z "${NO_WHEELS:-}" ]; then
  python3 -m pip install -q --no-deps --no-index --only-binary=:all: --python-version 3.12 \
    --target /tmp/site "$KIT"/whl/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
{
  nvidia-smi || true
  python3 -c "import sys, torch, av, ultralytics; print(sys.version.split()[0], 'torch', torch.__version__,
'cuda', torch.cuda.is_available(), 'av', av.__version__, 'ultralytics', ultralytics.__version__)"
} 2>&1 | tee "$OUT/env.txt"
python3 benchmarks/capacity.py --device "${DEVICE:-cuda}" --ultralytics --farm http --http-processes 8 \
  --clips-dir "$KIT/clips" --main-bitrate 400k --substream 640x360 \
  --peer-weights "$KIT/yolov8n_float.pt" --clips vtest,parking,highway --fps 2 \
  --cameras "${CAMERAS:-40,80,160}" --seconds "${SECONDS_:-20}" --window 10 --warmup 10 --no-stages \
  --out "$OUT/capacity_gpu" 2>&1 | tee "$OUT/log.txt"

"""Where a capacity run's lag builds up over time: ``benchmarks/capacity.py`` run as given, with the
pipeline's gather and each frame's analysis timed, binned by the run's seconds.

Per frame: how long it had waited since its reader received it (``Frame.captured``) when an inference
thread gathered it, and when its lane began to analyse it; per bin of ``--bin`` seconds: the frames
gathered and how many of them were due for the detector (the motion gate held the rest), the median
and largest wait at each point. A lag that comes in waves at the clip's length points at the farm's
looped clips (every camera's scene jumping in the same second), not at a steady shortage.

Usage: ``python benchmarks/lag_timeline.py --out benchmarks/lag_timeline [--bin 2] -- CAPACITY ARGS``
(the capacity run's own report goes to ``--out`` + ``_capacity``).
"""

from __future__ import annotations

import argparse
import json
import runpy
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from vision.pipeline.analysis import Analysis  # noqa: E402
from vision.pipeline.inference import Inference  # noqa: E402

Record = dict[str, list[tuple[float, float, bool]]]


def instrument(record: Record) -> None:
    """Time every gathered frame's wait (and whether it was due) and every analysed frame's."""
    gather, analyse = Inference.gather, Analysis.analyse

    def gathered(self: Inference, share: int) -> Any:
        out = gather(self, share)
        now = time.monotonic()
        for _, frame, due in out or ():
            record["gather"].append((now, now - frame.captured, due))
        return out

    def analysed(self: Analysis, worker: Any, frame: Any, detections: Any) -> None:
        now = time.monotonic()
        record["analyse"].append((now, now - frame.captured, detections is not None))
        analyse(self, worker, frame, detections)

    Inference.gather = gathered  # type: ignore[method-assign]
    Analysis.analyse = analysed  # type: ignore[method-assign]


def bins(record: Record, width: float) -> list[dict[str, Any]]:
    """Per ``width`` seconds from the first gather: frames gathered, due, and the waits' median / max."""
    gather, analyse = np.array(record["gather"]), np.array(record["analyse"])
    start = gather[:, 0].min()
    out = []
    for low in np.arange(0.0, max(gather[:, 0].max(), analyse[:, 0].max()) - start, width):
        g = gather[(gather[:, 0] - start >= low) & (gather[:, 0] - start < low + width)]
        a = analyse[(analyse[:, 0] - start >= low) & (analyse[:, 0] - start < low + width)]
        out.append(
            {
                "second": round(float(low), 1),
                "gathered": len(g),
                "due": int(g[:, 2].sum()) if len(g) else 0,
                "gather_wait_p50": round(float(np.median(g[:, 1])), 2) if len(g) else None,
                "gather_wait_max": round(float(g[:, 1].max()), 2) if len(g) else None,
                "analysed": len(a),
                "analyse_wait_p50": round(float(np.median(a[:, 1])), 2) if len(a) else None,
                "analyse_wait_max": round(float(a[:, 1].max()), 2) if len(a) else None,
            }
        )
    return out


def markdown(args: argparse.Namespace, rows: list[dict[str, Any]], record: Record) -> str:
    waits = {k: np.array([r[1] for r in record[k]]) for k in record}
    lines = [
        "# Lag over a capacity run's time (benchmarks/lag_timeline.py)",
        "",
        f"`benchmarks/capacity.py {' '.join(args.capacity)}`; its own report: "
        f"`{Path(args.out).name}_capacity.md`. Waits in seconds since the frame's reader received it; "
        f"bins of {args.bin:g} s from the first gather (the warm-up included).",
        "",
    ]
    for key, name in (("gather", "gathered"), ("analyse", "analysis began")):
        p50, p95, p99, top = np.percentile(waits[key], [50, 95, 99, 100])
        lines.append(
            f"- {name}: {len(waits[key])} frames, wait p50 {p50:.2f}, p95 {p95:.2f}, p99 {p99:.2f}, "
            f"max {top:.2f} s"
        )
    lines += [
        "",
        "| second | gathered | due | gather wait p50 / max s | analysed | analysis wait p50 / max s |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['second']:g} | {r['gathered']} | {r['due']} | {r['gather_wait_p50']} / "
            f"{r['gather_wait_max']} | {r['analysed']} | {r['analyse_wait_p50']} / {r['analyse_wait_max']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(HERE / "lag_timeline"), help="report stem (.md, .json)")
    parser.add_argument("--bin", type=float, default=2.0, help="seconds per row")
    parser.add_argument(
        "capacity", nargs=argparse.REMAINDER, help="-- then benchmarks/capacity.py's arguments"
    )
    args = parser.parse_args()
    args.capacity = args.capacity[1:] if args.capacity[:1] == ["--"] else args.capacity
    record: Record = {"gather": [], "analyse": []}
    instrument(record)
    sys.argv = [str(HERE / "capacity.py"), *args.capacity, "--out", f"{args.out}_capacity"]
    runpy.run_path(str(HERE / "capacity.py"), run_name="__main__")
    rows = bins(record, args.bin)
    Path(f"{args.out}.json").write_text(
        json.dumps({"capacity": args.capacity, "bins": rows}, indent=1) + "\n"
    )
    Path(f"{args.out}.md").write_text(markdown(args, rows, record))


if __name__ == "__main__":
    main()

"""The process's resident memory over a capacity run: does it level off, or grow with time?

Runs benchmarks/capacity.py's own step (our pipeline on the farm's live RTSP cameras, one step of
``--cameras``) in this process and samples the process's RSS (/proc/self/status) and the cyclic
collector's full collections every ``--every`` seconds from the pipeline's start. A run is labelled
(``--label``, e.g. the commit) and added to rss_keyframes.json beside this file; rss_keyframes.md
shows every run's curve. Measure the code before a change by running this file from a checkout of
it (it imports the repository it sits in).

Usage: ``python benchmarks/rss_keyframes.py --label after -- --cameras 32 --fps 0.5 --clips parking
--substream 640x360 --seconds 180 --window 30 --warmup 20`` (after ``--``: capacity.py's flags).
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import capacity  # noqa: E402  (beside this file)
import report  # noqa: E402


def rss_mb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) // 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


class Sampler:
    """RSS and full collections every ``every`` seconds from :meth:`start` (the pipeline's start)."""

    def __init__(self, every: float) -> None:
        self.every = every
        self.samples: list[dict[str, Any]] = []
        self._started: float | None = None

    def start(self) -> None:
        if self._started is None:
            self._started = time.monotonic()
            threading.Thread(target=self._run, name="rss", daemon=True).start()

    def _run(self) -> None:
        assert self._started is not None
        while True:
            at = time.monotonic() - self._started
            full = gc.get_stats()[2]["collections"]
            self.samples.append({"t": round(at), "rss_mb": rss_mb(), "full_collections": full})
            time.sleep(self.every - (time.monotonic() - self._started) % self.every)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", required=True, help="what ran (e.g. before / after and the commit)")
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--note", default="", help="a line for the report (e.g. the machine was shared)")
    parser.add_argument("capacity", nargs=argparse.REMAINDER, help="-- then capacity.py's flags")
    args = parser.parse_args()
    flags = [f for f in args.capacity if f != "--"]
    sampler = Sampler(args.every)
    run = capacity.Pipeline.run

    def sampled(self: capacity.Pipeline, *a: Any, **kw: Any) -> Any:
        sampler.start()
        return run(self, *a, **kw)

    capacity.Pipeline.run = sampled  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as tmp:
        sys.argv = ["capacity.py", *flags, "--out", str(Path(tmp) / "capacity")]
        capacity.main()
        step = json.loads((Path(tmp) / "capacity.json").read_text())["steps"][0]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    record = {
        "label": args.label,
        "commit": commit.stdout.strip(),
        "flags": " ".join(flags),
        "note": args.note,
        "cameras": step["cameras"],
        "windows_held": step["ours"]["windows_held"],
        "lag_p50": step["ours"]["lag_p50"],
        "lag_p95": step["ours"]["lag_p95"],
        "cores_used": step["ours"]["cores_used"],
        "samples": sampler.samples,
    }
    report.add_run("rss_keyframes", record, markdown)


def markdown(runs: list[dict[str, Any]]) -> str:
    lines = [
        "# Resident memory over a capacity run",
        "",
        "benchmarks/rss_keyframes.py: the process's RSS (MB) every few seconds from the pipeline's start, "
        "in a step of benchmarks/capacity.py, and the cyclic collector's full collections so far.",
        "",
    ]
    for r in runs:
        held = f"windows held {r['windows_held']}, lag p50 / p95 {r['lag_p50']} / {r['lag_p95']} s"
        lines += [
            f"## {r['label']} ({r['commit']}): {r['cameras']} cameras",
            "",
            f"`{r['flags']}`; {held}, {r['cores_used']} cores. {r['note']}",
            "",
            "| s | " + " | ".join(str(s["t"]) for s in r["samples"]) + " |",
            "|---|" + "---|" * len(r["samples"]),
            "| RSS MB | " + " | ".join(str(s["rss_mb"]) for s in r["samples"]) + " |",
            "| full collections | " + " | ".join(str(s["full_collections"]) for s in r["samples"]) + " |",
            "",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()

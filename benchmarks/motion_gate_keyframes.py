"""Motion gate on keyframes-only cameras: which of the capacity benchmark's detected frames it holds.

A camera at 0.5 detections/s decodes only its keyframes (``decode.keyframes_only``), one every
2 s on the capacity farm; keyframes carry no motion vectors, so the gate judges them by its pixel
picture alone, against the last detected keyframe. This replays what the capacity benchmark's
cameras see (benchmarks/capacity.py): each clip encoded as its 640x360 substream (farm.encode:
25 fps, GOP 2 s, no B-frames, 512 kb/s), its keyframes decoded as a reader does, through the gate
with the capacity config's zones (the plaza's crossing; elsewhere the whole picture), with the
gate's defaults but for ``max_skip``, swept. Per clip and ``max_skip``: keyframes, those held;
and per clip, the share of the zones' pixels changed between consecutive keyframes (what the gate
compares with ``threshold`` once ``max_skip`` lets it look).

Only the gate runs (no detector, no pipeline): the counts do not depend on the machine's load.

Then, what holding costs in events: both evaluation suites replayed by ``street-vision eval`` at
their own rates (5 detections/s) and at 0.5 detections/s (``--set camera.detect_fps=0.5``: frames
2 s apart, as here, though decoded in full), gate off and gate on at its defaults (``max_skip``
unset: 1 s at 5/s, 4.5 s at 0.5/s; ``--eval-max-skip`` sets one): frames detected and held, whether
the tickets are the same events (type, zone, incident matched, role: benchmarks/motion_gate.py's
check), the largest shift of an opening or closing time, and the tickets side by side. A held
frame carries the last detected frame's verdict (vision/camera/analysis.py).

Results go to motion_gate_keyframes.md and .json beside this file.

Usage: ``PYTHONPATH=$PWD python benchmarks/motion_gate_keyframes.py [--max-skip 1,2.5,4.5,10.5]``
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from capacity import ZONES  # noqa: E402  (beside this file)
from farm import CLIPS, SUB_BITRATE, encode  # noqa: E402  (beside this file)
from motion_gate import SUITES, run_eval, same_events, tickets  # noqa: E402  (beside this file)

from vision.scene.motion import MotionGate, MotionGateConfig, bgr_picture  # noqa: E402

SUBSTREAM = (640, 360, SUB_BITRATE)  # what the capacity benchmark's cameras detect on
KEYFRAMES = 2.0  # seconds between the substream's keyframes (its GOP): the frames a camera gets


def zones(clip: str) -> list[np.ndarray]:
    """The clip's zones in the capacity config, as the gate takes them."""
    parsed = yaml.safe_load("zones:\n" + ZONES.get(clip, ZONES["other"]))["zones"]
    return [np.array(zone["polygon"], float) for zone in parsed.values()]


def keyframes(path: Path) -> list[tuple[float, np.ndarray]]:
    """The file's keyframes (pts seconds, BGR), decoded as a keyframes-only reader does."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.skip_frame = "NONKEY"
        return [
            (float(f.pts * stream.time_base), f.to_ndarray(format="bgr24")) for f in container.decode(stream)
        ]


def changed_shares(frames: list[tuple[float, np.ndarray]], gate: MotionGate) -> list[float]:
    """Share of the zones' picture pixels past ``pixel_delta`` between each keyframe and the one before."""
    pictures = [bgr_picture(image, gate.cfg.width) for _, image in frames]
    mask, size = gate._region(pictures[0].shape)  # None: the whole picture
    changed = [cv2.absdiff(a, b) > gate.cfg.pixel_delta for a, b in itertools.pairwise(pictures)]
    return [int(np.count_nonzero(c if mask is None else c & mask)) / size for c in changed]


def replay(clip: str, path: Path, skips: list[float]) -> dict[str, Any]:
    """One clip's keyframes through a fresh gate per ``max_skip``."""
    frames = keyframes(path)
    result: dict[str, Any] = {"clip": clip, "keyframes": len(frames), "held": {}, "verdicts": {}}
    for max_skip in skips:
        gate = MotionGate(MotionGateConfig(max_skip=max_skip), zones(clip), KEYFRAMES)
        due = [gate.due(image, pts) for pts, image in frames]
        result["held"][str(max_skip)] = gate.skipped
        result["verdicts"][str(max_skip)] = "".join("D" if d else "." for d in due)
    shares = changed_shares(frames, MotionGate(MotionGateConfig(), zones(clip), KEYFRAMES))
    result["threshold"] = MotionGateConfig().threshold
    result["changed_median"] = round(statistics.median(shares), 4)
    result["changed_min"] = round(min(shares), 4)
    result["below_threshold"] = sum(int(s < result["threshold"]) for s in shares)
    return result


RATES = {"own": (), "0.5": ("camera.detect_fps=0.5",)}  # the suites' own rates (5/s), and 0.5/s


def suites(max_skip: float | None, folder: Path) -> list[dict[str, Any]]:
    """Both suites at their own rates and at 0.5 detections/s, gate off and on (``max_skip`` None: its
    default for the rate): per video, frames detected and held and the tickets (type, zone,
    incident, role, opened, closed), off | gated."""
    rows = []
    gate = () if max_skip is None else (f"camera.motion_gate.max_skip={max_skip}",)
    for (name, suite), (rate, sets) in itertools.product(SUITES.items(), RATES.items()):
        runs = [
            run_eval(suite, folder / f"{name}-{rate}-{gated}", gated, sets + more)
            for gated, more in ((False, ()), (True, gate))
        ]
        events = [tickets(run["results"]) for run in runs]
        frames = [{v["name"]: v for v in run["results"]["videos"]} for run in runs]
        for video in frames[0]:
            rows.append(
                {
                    "suite": name,
                    "rate": "own" if rate == "own" else f"{rate}/s",
                    "video": video,
                    "detected": [f[video]["frames"] for f in frames],
                    "held": frames[1][video]["frames_held"],
                    "tickets": [e[video] for e in events],
                    "same_events": same_events(*({video: e[video]} for e in events)),
                    "shift": shift(*(e[video] for e in events)),
                }
            )
    return rows


def shift(off: list[dict[str, Any]], gated: list[dict[str, Any]]) -> float | None:
    """The largest difference in seconds between an opening or closing time and its peer's (None: one
    closed and the other not, or other tickets); 0 without tickets."""
    if not same_events({"": off}, {"": gated}):
        return None
    shifts = [0.0]
    for a, b in zip(off, gated, strict=True):
        for key in ("opened_at", "resolved_at"):
            if (a[key] is None) != (b[key] is None):
                return None
            if a[key] is not None:
                shifts.append(abs(a[key] - b[key]))
    return round(max(shifts), 2)


def ticket_text(found: list[dict[str, Any]]) -> str:
    """Tickets as `type zone (incident, role) opened-closed`."""
    return (
        "; ".join(
            f"{t['type']} {t['zone']} ({t['incident']}, {t['role']}) {t['opened_at']}-{t['resolved_at']}"
            for t in found
        )
        or "none"
    )


def markdown(
    results: list[dict[str, Any]], skips: list[float], evals: list[dict[str, Any]], gated_skip: float | None
) -> str:
    """The tables of motion_gate_keyframes.md."""
    head = " | ".join(f"held, max_skip {s:g} s" for s in skips)
    gated = (
        "max_skip unset: 1 s at 5/s, 4.5 s at 0.5/s" if gated_skip is None else f"max_skip {gated_skip:g} s"
    )
    lines = [
        "# Motion gate on keyframes-only cameras (capacity clips, 0.5 detections/s)",
        "",
        "Generated by `benchmarks/motion_gate_keyframes.py` (see its docstring): each capacity clip as its",
        "640x360 substream (GOP 2 s), keyframes only, through the gate with the capacity config's zones and",
        "the gate's defaults but `max_skip` (unset, it is 4.5 s here: 2.25 intervals of 2 s). Only the",
        "gate runs: the counts do not depend on load.",
        "Changed: share of the zones' picture pixels past `pixel_delta` between consecutive keyframes",
        f"(threshold {results[0]['threshold']}).",
        "",
        f"| clip | keyframes | {head} | changed, median / min | pairs below threshold |",
        "|---|---|" + "---|" * len(skips) + "---|---|",
    ]
    for r in results:
        held = " | ".join(f"{r['held'][str(s)]} ({r['held'][str(s)] / r['keyframes']:.0%})" for s in skips)
        lines.append(
            f"| {r['clip']} | {r['keyframes']} | {held} | {r['changed_median']} / {r['changed_min']} | "
            f"{r['below_threshold']} of {r['keyframes'] - 1} |"
        )
    lines += ["", "Verdicts per keyframe (D detected, . held):", ""]
    for r in results:
        for s in skips:
            lines.append(f"- {r['clip']}, max_skip {s:g} s: `{r['verdicts'][str(s)]}`")
    lines += [
        "",
        f"## Suites at their own rates and at 0.5 detections/s, gate off and on ({gated})",
        "",
        "A held frame carries the last detected frame's verdict. Same events: type, zone, incident",
        "matched and role; shift: the largest difference of an opening or closing time, seconds.",
        "",
        "| suite | rate | video | detected, off / gated | held | same events | shift "
        "| tickets, off \\| gated |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in evals:
        off, gated_tickets = row["tickets"]
        moved = "-" if row["shift"] is None else f"{row['shift']:g}"
        lines.append(
            f"| {row['suite']} | {row['rate']} | {row['video']} | "
            f"{row['detected'][0]} / {row['detected'][1]} | "
            f"{row['held']} | {'yes' if row['same_events'] else 'no'} | {moved} | "
            f"{ticket_text(off)} \\| {ticket_text(gated_tickets)} |"
        )
    return "\n".join([*lines, "", READING.strip()]) + "\n"


READING = """
Reading the suites (this run). The gate gives the same events everywhere, at 5/s and at 0.5/s,
and the same times: the bicycle's ticket opens and closes as without the gate (14.0-38.0 at 0.5/s)
with 11 of its 20 frames held (before held frames carried the last verdict: 24.0, not closed within
the clip; this file as of commit 0e4e53d). Its ticket opens at 14.0 s at both rates, gate on and
off, now that its episode is dated from when its track came to rest (before: 22.0 s gate off, 22.4 s
gated at 5/s; 22.0 s at 0.5/s; this file as of commit 47f1e78). Before the rule's subjects kept
their track (branch falsetix14) it opened at 28.6 s without the gate (as of commit c8183e2): at
20.4 s someone in front of the parked bicycle cut its box to a third for one frame, that box matched
no place of the rule, and the bicycle's pending episode was seen gone and started again (gated,
that frame was held). Before the same branch the parking lane at 0.5/s had a false litter ticket
at 24.0 s, gate on and off (as of commit c8183e2): a blob of the drifting camera's line edges,
dated by the age of pixels that had been in no blob (docs/evaluation.md). The vtest clip holds
nothing at 0.5/s: its plaza always moves. The tracker's appearance check on a lost track's re-match
(branch reid14) moved the plaza's and vtest's lingering and crowd tickets at 5/s, gate on and off
alike (as in benchmarks/motion_gate.md; docs/evaluation.md, "A close past its due time"), and no
ticket at 0.5/s.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--max-skip", default="1,2.5,4.5,10.5", help="max_skip values, seconds, comma-separated"
    )
    parser.add_argument("--clips", default=",".join(CLIPS), help=f"of {', '.join(CLIPS)}")
    parser.add_argument(
        "--eval-max-skip", type=float, default=None, help="max_skip of the gated suites (default: unset)"
    )
    args = parser.parse_args()
    skips = [float(s) for s in args.max_skip.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        results = [replay(c, encode(c, Path(folder), SUBSTREAM), skips) for c in args.clips.split(",")]
        evals = suites(args.eval_max_skip, Path(folder))
    here = Path(__file__).with_suffix("")
    record = {"max_skip": skips, "clips": results, "eval_max_skip": args.eval_max_skip, "suites": evals}
    here.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    text = markdown(results, skips, evals, args.eval_max_skip)
    here.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()

"""What every before/after benchmark report does the same way: its common arguments, the machine and its
load, the automatic PRELIMINARY label, where the results go, and a side run in another checkout's code.

A benchmark run on a shared machine must say so; deciding that by hand (a default ``--note``) is how
a quiet run ends up labelled loaded or the reverse. So the label comes from the load average read at
the run's start and end (:func:`finish`), and the machine line and the label (:func:`caveats`) are
written here, once, for ssd_batch, ssd_infer, ssd_decode, tracker_cost and analysis_cost. The
machine description itself is capacity.py's :func:`machine` (reused, not repeated).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from capacity import machine  # noqa: F401  (beside this file; re-exported for the scripts)

HERE = Path(__file__).resolve().parent
# what the label says per kind of time measured: why a loaded machine's figures are preliminary
CPU_TIME = (
    "Per-thread CPU time does not count waiting for a core, but a loaded machine's shared cores and "
    "caches slow all code; only figures measured in the same run compare."
)


def arguments(doc: str, rounds: int | None = None, rewrite: bool = False) -> argparse.ArgumentParser:
    """A script's parser: its docstring's first line as the description, ``--rounds`` (when the script
    has rounds, with its default), ``--note`` (a line for the report, e.g. what before and after are)
    and ``--markdown`` (``rewrite``: the .md again from the committed .json)."""
    parser = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    if rounds is not None:
        parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--note", default="", help="a line for the report")
    if rewrite:
        parser.add_argument("--markdown", action="store_true", help="rewrite the .md from the .json")
    return parser


def run_worker(script: str, checkout: Path, *args: str) -> Any:
    """``script --worker ARGS`` in a process of its own with ``checkout`` first on its path (one side of a
    before/after comparison): the JSON it prints last."""
    done = subprocess.run(
        [sys.executable, script, "--worker", *args],
        env=dict(os.environ, PYTHONPATH=str(checkout)),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def finish(record: dict[str, Any], share: float = 1.0) -> bool:
    """Note the load average after the run in ``record["machine"]`` (which :func:`machine` filled at
    its start) and set ``record["preliminary"]``: the load above ``share`` of the cores at either end."""
    m = record["machine"]
    m["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    m["loaded_above"] = share * m["cores"]
    record["preliminary"] = max(m["load_average_before"][0], m["load_average_after"][0]) > m["loaded_above"]
    return record["preliminary"]


def machine_line(m: dict[str, Any], *packages: str) -> str:
    """ "Machine: CPU, N cores, system; Python, the ``packages``' versions; load average before and
    after." (a package missing from :func:`machine`'s versions is named as not installed)."""
    versions = "".join(f", {p} {m['versions'].get(p) or 'not installed'}" for p in packages)
    return (
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['system']}; Python {m['python']}{versions}; "
        f"load average {m['load_average_before']} before, {m.get('load_average_after', '?')} after."
    )


def caveats(record: dict[str, Any], why: str = CPU_TIME) -> list[str]:
    """The report's PRELIMINARY paragraph (and blank line) when :func:`finish` found the machine loaded,
    then the run's ``note`` in bold when it has one; nothing for a quiet run without a note."""
    lines = []
    if record.get("preliminary"):
        above = record["machine"].get("loaded_above", record["machine"]["cores"])
        lines += [
            f"**PRELIMINARY: measured on a shared machine under load (load average above {above:g}). {why}**",
            "",
        ]
    if record.get("note"):
        lines += [f"**{record['note']}**", ""]
    return lines


def publish(
    name: str, record: dict[str, Any], render: Callable[[dict[str, Any]], str], share: float = 1.0
) -> None:
    """End a run: :func:`finish` (the load after, the label), then ``name``.json and ``name``.md (as
    ``render`` writes it) beside this file, and the Markdown on stdout."""
    finish(record, share)
    (HERE / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    text = render(record)
    (HERE / f"{name}.md").write_text(text)
    print(text)


def add_run(name: str, run: dict[str, Any], render: Callable[[list[dict[str, Any]]], str]) -> None:
    """Add ``run`` to the runs kept in ``name``.json beside this file (a report of every run: before,
    after, one setting more) and write ``name``.md, as ``render`` writes it, from them all."""
    path = HERE / f"{name}.json"
    runs = json.loads(path.read_text()) if path.exists() else []
    runs.append(run)
    path.write_text(json.dumps(runs, indent=1) + "\n")
    (HERE / f"{name}.md").write_text(render(runs))

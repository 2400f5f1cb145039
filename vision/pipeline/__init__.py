"""Wire the stages for N cameras: readers -> inference -> per-camera analysis -> one store writer.

Each camera has its own reader thread (vision/ingest/reader.py) that hands over frames
due at its detect fps. The inference thread gathers the frames ready from all cameras
into one batch per round and detects them in one call (whole frames, or crops and tiles
per camera, as each camera's planner says); on the CPU there is one such thread per core
(detector.parallel, vision/detect/threads.py), each gathering in turn its share of the
cameras, a camera's frames still detected in order. Everything after the detector (masks,
tracking, scene models, rules, lifecycle) is one camera unit per camera
(vision/camera/unit.py), run off the inference thread by an analysis lane: each camera
belongs to one lane, which takes its frames in order and applies its commands (zone
edits, inbound reports) between them, so a unit is only ever touched by one thread.
What a lane produces (detections, transitions with the unit's state after them,
checkpoints) goes to the store writer (vision/store/writer.py), which runs on the thread
that called :meth:`Pipeline.run` (the store's) and commits in batches: each transition's
snapshots are written to disk, then it commits with the unit's state (and its outbox
message when dispatch is on); the dispatcher is woken after the commit. So inference
never waits for analysis or the disk, only for a full lane (the cameras' backlog).

One camera's failure (a corrupt file, a dead stream, a bad frame, an exception in its
unit, its detection or its writes) is logged and touches that camera only: a camera
whose unit raised is in ``error``, its frames dropped for a backoff of stream time, then
its unit is restored from the store as at start. While a live camera is stalled or
offline its episodes are told UNKNOWN, so its zones pause instead of looking empty.

Before the first frame every camera unit is restored from the store (its snapshot and
its open events), and open events of cameras that left the config are closed with a
reason, so a restart never orphans or duplicates a ticket. Each unit's state is
checkpointed every ``storage.checkpoint_interval`` seconds of stream time and at the
end of the run, once every lane and the writer have drained.

Files read as fast as possible end the run when they end; with any live camera (a
stream, or a file with realtime) the run goes on until :meth:`Pipeline.stop` (Ctrl-C,
SIGTERM) or ``max_seconds`` of wall time.

The parts: ``worker.py`` (one camera: reader, planner, gate, unit; its failures contained),
``inference.py`` (the inference threads: gather, detect, hand over), ``lanes.py`` (the analysis
lanes' queues), ``analysis.py`` (a lane's work: frames through their units, commands, health),
``commits.py`` (transitions to the store writer, in each camera's order) and ``core.py`` (the
:class:`Pipeline` that wires them, restores from the store and applies the API's commands).
"""

from vision.pipeline.analysis import detections_due as detections_due
from vision.pipeline.core import Pipeline as Pipeline
from vision.pipeline.core import RunSummary as RunSummary
from vision.pipeline.core import opencv_threads as opencv_threads
from vision.pipeline.worker import CameraStats as CameraStats

"""The one error of the tuning commands: something the user can fix, named in the message."""


class TuningError(Exception):
    """A source, dataset, label file or model that cannot be used; the message says which and why."""

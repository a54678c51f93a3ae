"""The phases of a request and the sample context a user attaches to its Locust request event.

The contract between ``TfsUser`` and the statistics (``tfs_user.run``): every request event
a TfsUser fires carries ``context={"tfs": Sample(phase, frames)}`` and Locust's ``start_time``
(wall-clock seconds, ``time.time()``); its end is ``start_time + response_time / 1000``.
Events without the ``tfs`` key (other users in the same locustfile) are not ours.
"""

import enum
from typing import NamedTuple

CONTEXT_KEY = "tfs"


class Phase(enum.Enum):
    """Where a request's figures go: measured, warm-up (counted apart), after stop (left out)."""

    MEASURED = ""
    WARMUP = " (warm-up)"
    AFTER_STOP = " (after stop)"

    def request_name(self, verb, model_name):
        """The Locust request name, e.g. ``Predict resnet (warm-up)`` for verb ``Predict`` (the protocol's call):
        Locust's own table keeps phases apart."""
        return f"{verb} {model_name}{self.value}"


class Sample(NamedTuple):
    """What a request event tells our statistics beyond Locust's fields."""

    phase: Phase
    frames: int
    """Frames (batch size) the request carried."""
    endpoint: str = ""
    """The target the request went to when there are several (``tfs_user.transport.endpoints``), else ""."""
    parts: tuple = ()
    """Labels of the mixed run's rows the request also counts under (``batch 8``, ``data a.npy``), else ()."""


def sample_of(context):
    """The Sample in a request event's context, or None for events that are not ours."""
    return context.get(CONTEXT_KEY) if context else None

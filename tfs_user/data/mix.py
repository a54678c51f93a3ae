"""Mixed requests: weighted batch sizes and data files, and the seeded sequence that picks among them.

``--batch-size 1:6,8:3,32:1`` sends batches of 1, 8 and 32 frames in the ratio 6:3:1 (a plain
``8`` keeps its old meaning: every request 8 frames); ``--images-numpy-path small.npy:1,big.npy:1``
does the same for data files. Every (batch size, data file) pair is a *variant*: its own Settings,
fitted to the signature on its own and prepared once (``tfs_user.prepare``); its weight is the
product of the two weights.

Each user draws its variants independently from ``numpy.random.default_rng([seed, worker, user])``
(``MixSequence``): reproducible for a fixed ``--mix-seed``, different per user and worker process.
Over n requests the count of a variant of share p is binomial(n, p): its share is within
``3 * sqrt(p (1 - p) / n)`` of p in all but 0.3 % of runs (0.015 at p = 0.5, n = 10 000).

Plain numpy; imports neither gRPC nor Locust.
"""

import numpy as np

from tfs_user.option_values import OptionError

DRAW_AHEAD = 1024
"""Variants a user draws at once (one numpy call per 1024 requests)."""


def _weight(text, item):
    try:
        weight = float(text)
    except ValueError:
        weight = float("nan")
    if not weight > 0 or weight == float("inf"):
        raise OptionError(f"weight {text!r} in {item!r} is not a positive number; expected VALUE:WEIGHT "
                          "with WEIGHT > 0, e.g. 1:6,8:3,32:1")
    return weight


def _entries(text, example):
    """The comma-separated entries of ``text``, stripped; OptionError for an empty one among others (``1:6,,8:3``,
    a trailing comma: a value was lost, e.g. an unset shell variable). '' -> []."""
    parts = [part.strip() for part in str(text).split(",")]
    if len(parts) > 1 and not all(parts):
        raise OptionError(f"{text!r} has an empty entry (entry {parts.index('') + 1} of {len(parts)}); expected "
                          f"entries separated by single commas, e.g. {example}")
    return [part for part in parts if part]


def parse_batch_sizes(text):
    """'1:6,8:3,32:1' -> ((1, 6.0), (8, 3.0), (32, 1.0)); '8' -> ((8, 1.0),); an int passes as ((n, 1.0),).

    Raises OptionError (one line, the value first: argparse and the web form put the option before it)
    for a size that is not an integer >= 1, a weight that is not a positive
    number, a size given twice, an empty entry (``1:6,,8:3``, a trailing comma), or an empty list.
    """
    if isinstance(text, int):
        text = str(text)
    pairs = []
    for item in _entries(text, "1:6,8:3,32:1"):
        size_text, sep, weight_text = item.partition(":")
        hint = "" if item == str(text).strip() else " (in SIZE:WEIGHT pairs, e.g. 1:6,8:3,32:1)"
        named = repr(size_text) if size_text == item else f"size {size_text!r} in {item!r}"
        try:
            size = int(size_text)
        except ValueError:
            raise OptionError(f"{named} is not an integer; expected an integer >= 1{hint}") from None
        if size < 1:
            raise OptionError(f"{named} is out of range; expected an integer >= 1{hint}")
        pairs.append((size, _weight(weight_text, item) if sep else 1.0))
    return _checked(pairs, text, "batch sizes")


def parse_weighted_paths(text):
    """'a.npy:3,b.npy:1' -> (('a.npy', 3.0), ('b.npy', 1.0)); a path without ``:WEIGHT`` weighs 1; '' -> ().

    The part after a path's last ``:`` is its weight when it is a number (so ``x.npy:-1`` is a bad weight,
    not a file name). Raises OptionError for a weight that is not a positive number, a path given twice or
    an empty entry (``a.npy:3,,b.npy:1``, a trailing comma).
    """
    pairs = []
    for item in _entries(text, "small.npy:1,big.npy:1"):
        path, sep, weight_text = item.rpartition(":")
        try:
            float(weight_text)
            numeric = bool(sep and path)
        except ValueError:
            numeric = False
        pairs.append((path, _weight(weight_text, item)) if numeric else (item, 1.0))
    return _checked(pairs, text, "files") if pairs else ()


def _checked(pairs, text, what):
    if not pairs:
        raise OptionError(f"{text!r} names no {what}; expected e.g. 8 or 1:6,8:3,32:1")
    values = [value for value, _ in pairs]
    twice = sorted({str(v) for v in values if values.count(v) > 1})
    if twice:
        raise OptionError(f"{text!r} names {twice[0]} twice; expected each once with its weight")
    return tuple(pairs)


def mix_text(pairs):
    """((1, 6.0), (8, 3.0)) -> '1:6,8:3' (a single entry of weight 1 -> its value alone)."""
    if len(pairs) == 1:
        return str(pairs[0][0])
    return ",".join(f"{value}:{weight:g}" for value, weight in pairs)


class MixSequence:
    """The variant of each request of one user: indices into ``weights``, drawn with replacement.

    ``weights`` a sequence of positive floats (one per variant); ``stream`` a tuple of ints that tells
    users apart (worker index, user number). One variant: always 0, nothing drawn.
    """

    def __init__(self, weights, seed, stream=()):
        weights = np.asarray(weights, dtype=np.float64)
        self._p = weights / weights.sum()
        self._rng = np.random.default_rng([int(seed), *(int(s) for s in stream)]) if len(weights) > 1 else None
        self._ahead = []

    def next(self):
        """The next request's variant index (int)."""
        if self._rng is None:
            return 0
        if not self._ahead:
            self._ahead = self._rng.choice(len(self._p), size=DRAW_AHEAD, p=self._p).tolist()[::-1]
        return self._ahead.pop()

    def take(self, n):
        """The next ``n`` indices as a list (tests, and a trace's batch column that leaves them open)."""
        return [self.next() for _ in range(n)]

"""Per-model schedules in the open loop (``--models`` with ``--arrival-rate``, ``--sweep rate:...`` or a trace).

A *lane* is one schedule of the open loop and the users that take its slots. A run of one model has
one lane, ``ANY`` (every user takes its slots, as before lanes). A run of several ``--models`` has a
lane per model, keyed by the model's Locust user class name: model i gets ``R x share_i / sum(shares)``
of an open-loop rate R, and a trace's line goes to the lane of the model its ``model`` column names
(a line without a model: to a model picked by the shares, in a fixed weighted round-robin, so a
trace without a model column is split as a rate is). ``LanePlan`` is that plan, made once from the
options; ``split`` gives each process (worker) its part of every lane: a lane's rate in proportion
to the process's users *of that model*, and a trace lane's lines every n-th among the processes that
have users of it. A lane without a user anywhere keeps its rate and lines on the processes (in
proportion to all their users): its slots fall due, are counted as never sent and named in a warning
(``no_user_warning``), never dropped silently.

Plain data: imports neither gRPC nor Locust.
"""

import re
from dataclasses import dataclass

ANY = ""
"""The lane every user takes from (one model in the run)."""


class LaneError(ValueError):
    """A trace line naming a model the run does not test; one line."""


def class_name(model):
    """The Locust user class name of ``model`` (``tfs_user.models.class_name``)."""
    return re.sub(r"\W", "_", model)


def round_robin(weights, count):
    """``count`` picks (indices into ``weights``, positive floats) in smooth weighted round-robin order: every
    prefix is as close to the weights' proportions as whole picks allow (nginx's upstream choice)."""
    current = [0.0] * len(weights)
    total = sum(weights)
    out = []
    for _ in range(count):
        current = [c + w for c, w in zip(current, weights)]
        best = max(range(len(weights)), key=lambda i: current[i])
        current[best] -= total
        out.append(best)
    return out


@dataclass(frozen=True)
class LanePlan:
    """The run's lanes: ``keys`` (class names, or ``(ANY,)``), ``models`` (their model names), ``shares`` (their
    share of the rate, positive floats) and, with a trace, ``line_keys`` (each line's lane) and ``batch_sizes``
    (each line's batch size, or () when the trace gives none)."""

    keys: tuple = (ANY,)
    models: tuple = ("",)
    shares: tuple = (1.0,)
    line_keys: tuple = ()
    batch_sizes: tuple = ()

    @property
    def per_model(self):
        """Whether the run has a lane per model (several models)."""
        return self.keys != (ANY,)

    def key_of(self, class_name_):
        """The lane of a user of class ``class_name_``: its model's, or ANY."""
        return class_name_ if class_name_ in self.keys else ANY

    def model_of(self, key):
        return self.models[self.keys.index(key)] if key in self.keys else key

    def rates(self, rate):
        """{key: req/s}: ``rate`` split over the lanes by share."""
        total = sum(self.shares)
        return {key: rate * share / total for key, share in zip(self.keys, self.shares)}

    def lines(self, key):
        """The trace lines (0-based) of lane ``key``."""
        return tuple(i for i, k in enumerate(self.line_keys) if k == key)

    def sizes_of(self, model):
        """The batch sizes the trace asks of ``model`` (sorted), or () without a batch_size column."""
        if not self.batch_sizes:
            return ()
        key = class_name(model) if self.per_model else ANY
        return tuple(sorted({self.batch_sizes[i] for i, k in enumerate(self.line_keys) if k == key}))

    @classmethod
    def make(cls, models, model_name, trace=None, trace_path=""):
        """The plan of a run: ``models`` as ``tfs_user.models.parse_models`` gives them (() = one model,
        ``model_name``), ``trace`` a ``traces.Trace`` or None. Raises LaneError when a trace line names a model
        that is not one of the run's (one line naming the file, the line and the models)."""
        names = tuple(name for name, _ in models) or (model_name,)
        if len(names) > 1:
            plan = cls(tuple(class_name(n) for n in names), names,
                       tuple(float(values.get("share", 1.0)) for _, values in models))
        else:
            plan = cls(models=names)
        if trace is None:
            return plan
        given = trace.models or ("",) * len(trace.times)
        for line, name in enumerate(given):
            if name and name not in names:
                raise LaneError(f"trace {trace_path!r} line {_file_line(trace, line)}: model {name!r} is not one of "
                                f"this run's models ({', '.join(names)}); expected a --models name (or --model-name)")
        if not plan.per_model:
            keys = (ANY,) * len(given)
        else:
            picks = iter(round_robin(plan.shares, sum(1 for name in given if not name)))
            keys = tuple(class_name(name) if name else plan.keys[next(picks)] for name in given)
        return cls(plan.keys, plan.models, plan.shares, keys, tuple(trace.batch_sizes))


def _file_line(trace, line):
    lines = getattr(trace, "file_lines", ())
    return lines[line] if line < len(lines) else line + 1


def split(plan, rate, workers):
    """Each worker's part of every lane: ``{worker: {key: (req/s, (rank, count) or None)}}``.

    ``workers``: ``{worker: {class name: users}}`` in worker-index order; ``rate`` the test's (0 = a trace);
    a trace lane's lines go every ``count``-th from ``rank`` among the workers that have its users (None: no
    line), the ANY lane's among the workers that have any user: a worker without a user gets no part of the
    schedule (before, it kept its every-n-th line of a trace and they were neither sent nor counted). A lane no
    worker has a user of is shared as if every user were its (counted unsent there); with no user at all, evenly
    among the workers (its slots fall due and are counted unsent where a schedule is open, with
    ``no_user_warning``)."""
    out = {w: {} for w in workers}
    totals = {w: sum(classes.values()) for w, classes in workers.items()}
    if not sum(totals.values()):
        totals = {w: 1 for w in workers}  # no user anywhere: the slots still fall due, never dropped silently
    rates = plan.rates(rate) if rate else {key: 0.0 for key in plan.keys}
    for key in plan.keys:
        users = {w: (totals[w] if key == ANY else classes.get(key, 0)) for w, classes in workers.items()}
        if not sum(users.values()):  # nobody runs this model: its slots are counted unsent where they fall
            users = dict(totals)
        total = sum(users.values())
        having = [w for w in workers if users[w] > 0]
        for w in workers:
            part = rates[key] * users[w] / total if total else 0.0
            out[w][key] = (part, (having.index(w), len(having)) if w in having else None)
    return out


def no_user_warning(model, unsent):
    """One line for a model whose lane had no user on a process: its due slots were not sent."""
    return (f"open loop: model {model} had no user here to send its share of the schedule ({unsent} request"
            f"{'s' if unsent != 1 else ''} fell due and never sent); give it users (-u at least one per model on "
            "each process, or --config-users)")

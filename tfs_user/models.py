"""Several models in one run from the command line or config file: ``--models``.

``--models "small share=3 batch-size=1:6,8:3; big share=1 images-numpy-path=big.npy slo-p99-ms=50"``
names the models (entries separated by ``;``), each with KEY=VALUE settings that override the
run's options for that model only (any key of ``MODEL_KEYS``, spelled as the option without
``--``). Each model becomes a Locust user class of its own, named after the model (a subclass of
``OptionsTfsUser``), whose ``weight`` is its ``share`` (default 1): Locust spreads ``--users`` over
the classes by weight, so ``share`` is each model's share of users, and Locust's own
``--config-users`` / ``fixed_count`` / class picker work on these classes as on any other. Each
model's requests are named ``Predict MODEL`` and get their own rows; ``slo-p99-ms`` and
``slo-min-fps`` are that model's SLOs, judged beside the run's overall ones.

Plain data: imports neither gRPC nor Locust.
"""

import argparse
import re

from tfs_user.option_values import OptionError

MODEL_KEYS = ("batch-size", "mix-seed", "images-numpy-path", "input", "images-dir", "input-name", "synthetic-shape",
              "dtype", "layout", "signature-name", "model-version", "model-version-label", "output-names",
              "validate-outputs", "warmup-iterations", "tfs-iterations", "timeout")
"""Options a ``--models`` entry may set for its model (the option's name without ``--``)."""
SLO_KEYS = ("slo-p99-ms", "slo-min-fps")
"""A model's own SLOs (judged on its row)."""
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


def _dest(key):
    return "tfs_iterations" if key == "tfs-iterations" else key.replace("-", "_")


def _value(key, text, entry):
    """The value of ``key`` checked by its option's own parser (``tfs_user.options``); OptionError if bad."""
    from tfs_user.options import OPTIONS  # the table, for each key's own check

    if key == "share" or key in SLO_KEYS:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not (value > 0 if key == "share" else value >= 0) or value == float("inf"):
            expected = "a positive number" if key == "share" else "a number >= 0"
            raise OptionError(f"--models {key}={text!r} in {entry!r} is not valid; expected {expected}")
        return value
    kwargs = next(kw for flags, kw in OPTIONS if f"--{key}" in flags)
    convert = kwargs.get("type")
    if convert is not None:
        try:
            convert(text)
        except (argparse.ArgumentTypeError, ValueError) as e:
            raise OptionError(f"--models {key}={text!r} in {entry!r} is not valid: {e}") from None
    return text


def parse_models(text):
    """'a share=2 batch-size=8; b' -> (('a', {'share': 2.0, 'batch_size': '8'}), ('b', {})): option values stay
    text (as the command line gives them), keyed by option dest; share and SLOs are floats.

    Raises OptionError (one line) for an entry without a model name, a name given twice, a token that is
    not KEY=VALUE, an unknown key, a value its option refuses, or an empty entry (``a; ;b``, a trailing ``;``).
    """
    models = []
    entries = [part.strip() for part in (text or "").split(";")]
    if len(entries) > 1 and not all(entries):
        raise OptionError(f"--models {text!r} has an empty entry (entry {entries.index('') + 1} of {len(entries)}); "
                          "expected entries separated by single ';', e.g. 'resnet share=3; mobilenet share=1'")
    for entry in filter(None, entries):
        name, *tokens = entry.split()
        if not _NAME.match(name) or "=" in name:
            raise OptionError(f"--models entry {entry!r} does not start with a model name; expected "
                              "'NAME KEY=VALUE ...', e.g. 'resnet share=3 batch-size=1:6,8:3; mobilenet share=1'")
        values = {}
        for token in tokens:
            key, sep, value = token.partition("=")
            if not sep or key not in (*MODEL_KEYS, *SLO_KEYS, "share"):
                raise OptionError(f"--models {token!r} in {entry!r} is not KEY=VALUE with a known key; expected one "
                                  f"of share, {', '.join(SLO_KEYS + MODEL_KEYS)}")
            values["share" if key == "share" else _dest(key)] = _value(key, value, entry)
        if name in (n for n, _ in models):
            raise OptionError(f"--models names {name!r} twice; expected each model once")
        models.append((name, values))
    return tuple(models)


def class_name(model):
    """The Locust user class name of ``model`` (what ``--config-users`` and the class picker call it)."""
    return re.sub(r"\W", "_", model)


def model_classes(base, models):
    """One subclass of ``base`` (OptionsTfsUser) per ``parse_models`` entry: ``model_options`` its overrides,
    ``weight`` its share."""
    classes = []
    for name, values in models:
        overrides = {k: v for k, v in values.items() if k != "share" and not k.startswith("slo_")}
        overrides["model_name"] = name
        share = values.get("share", 1.0)
        attributes = {"model_options": overrides, "weight": int(share) if share == int(share) else share, "abstract": False,
                      "__module__": base.__module__,
                      "__doc__": f"Users of model {name!r} (``--models``): the run's options with {overrides}."}
        classes.append(type(class_name(name), (base,), attributes))
    return classes


def model_slos(models):
    """{model name: {"slo_p99_ms": x, "slo_min_fps": y}} for the models that set their own SLOs."""
    return {name: {k: v for k, v in values.items() if k.startswith("slo_")}
            for name, values in models if any(k.startswith("slo_") for k in values)}


def model_slo_violations(data, slos):
    """One ``SLO missed: model M: ...`` line per threshold a model's own row (``report.summary``) misses;
    ``slos`` from ``model_slos``. A model without a row (no measured request) misses each of its SLOs."""
    rows = {row["name"].split(" ", 1)[-1]: row for row in data["rows"][:-1] if not row.get("part_of")}
    out = []
    for model, slo in slos.items():
        row = rows.get(model)
        p99, fps = slo.get("slo_p99_ms"), slo.get("slo_min_fps")
        if p99:
            if row is None or row["p99_ms"] is None:
                out.append(f"SLO missed: model {model}: p99 latency: no successful requests")
            elif row["p99_ms"] > p99:
                out.append(f"SLO missed: model {model}: p99 latency {row['p99_ms']:.3f} ms > slo-p99-ms {p99:g}")
        if fps:
            if row is None or not row["frames"]:
                out.append(f"SLO missed: model {model}: FPS: no successful requests")
            elif row["fps"] < fps:
                out.append(f"SLO missed: model {model}: FPS {row['fps']:.1f} < slo-min-fps {fps:g}")
    return out


def apply(environment, text):
    """Make the environment's user classes those of ``--models`` ``text`` (parsed; OptionError when bad):
    the bundled ``OptionsTfsUser`` (a class whose ``model_options`` is {}) is replaced by one class per model,
    also made known to Locust's ``--config-users`` and class picker. Empty text restores the bundled class.
    Returns ``model_slos`` of the models. Raises OptionError when the locustfile has no such class."""
    models = parse_models(text)
    made = getattr(environment, "tfs_model_classes", None)
    if made is None and _declared is not None and all(c in environment.user_classes for c in _declared[1]):
        made = environment.tfs_model_classes = _declared
    if made is not None and made[0] == text:  # already applied (init, then test_start)
        return model_slos(models)
    classes = environment.user_classes
    current = made[1] if made is not None else []
    base = made[2] if made is not None else next((c for c in classes if getattr(c, "model_options", None) == {}), None)
    known = getattr(environment, "available_user_classes", None)  # what --class-picker and --config-users offer
    if not models:
        if made is not None:
            environment.user_classes = [c for c in classes if c not in current] + [base]
            environment.tfs_model_classes = None
            if known is not None:
                for c in current:
                    known.pop(c.__name__, None)
                known[base.__name__] = base
        return {}
    if base is None:
        raise OptionError("--models makes one user class per model from the bundled locustfile's OptionsTfsUser; "
                          "this locustfile has none (give -f locustfile.py, or TfsUser subclasses of your own)")
    new = model_classes(base, models)
    environment.user_classes = [c for c in classes if c is not base and c not in current] + new
    if known is not None:  # the bundled class is replaced there too (a picker would otherwise still run it)
        for c in [*current, base]:
            known.pop(c.__name__, None)
        known.update({c.__name__: c for c in new})
    tasks = getattr(environment, "available_user_tasks", None)
    if tasks is not None:
        tasks.update({c.__name__: list(c.tasks) for c in new})
    environment.tfs_model_classes = (text, new, base)
    return model_slos(models)


_declared = None
"""(text, classes, base) made while the locustfile loaded (``declare``), for ``apply`` to recognise."""


def declare(namespace):
    """Make the ``--models`` classes while the locustfile loads (called by the bundled locustfiles with their
    ``globals()``): Locust applies ``--config-users`` to the classes it found in the locustfile before any
    plugin hook runs, so the model classes must exist by then. Reads ``--models`` (command line, TFS_MODELS,
    config file) the way Locust reads ``-f``; a bad value is left for the full parser to report."""
    global _declared
    from locust.argument_parser import get_empty_argument_parser

    parser = get_empty_argument_parser(add_help=False)
    parser.add_argument("--models", default="", env_var="TFS_MODELS")
    try:
        text = parser.parse_known_args()[0].models or ""
        models = parse_models(text)
    except (SystemExit, OptionError):
        return
    base = namespace.get("OptionsTfsUser")
    if not models or base is None:
        return
    classes = model_classes(base, models)
    del namespace["OptionsTfsUser"]  # Locust runs the model classes instead
    namespace.update({c.__name__: c for c in classes})
    _declared = (text, classes, base)

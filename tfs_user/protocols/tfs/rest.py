"""TF Serving's REST API on the wire: the predict path, JSON request bodies (row format), answer checks.

``POST /v1/models/NAME[/versions/N|/labels/L]:predict`` with ``{"signature_name": ..., "instances":
[...]}``: one instance per frame (a model with one input: its value; several: ``{input: value}``);
``DT_STRING`` values (encoded images) as ``{"b64": ...}``. Bodies are JSON text made once per batch
and cached as for gRPC (``--request-cache-mb``). The answer is ``{"predictions": [...]}`` (one row per
frame) or ``{"outputs": ...}`` (columnar), checked as over gRPC: outputs present, batch dimension.
"""

import json

from tfs_user.data.fitting import fit_inputs
from tfs_user.protocols.bodies import CachedBodies
from tfs_user.protocols.outcomes import missing_outputs
from tfs_user.protocols.rest import RestBody, dumps, json_values
from tfs_user.transport.failures import bad_response


def model_path(settings):
    """``/v1/models/NAME[/versions/N|/labels/L]`` of the model under test."""
    path = f"/v1/models/{settings.model_name}"
    if settings.model_version:
        return f"{path}/versions/{settings.model_version}"
    return f"{path}/labels/{settings.version_label}" if settings.version_label else path


def build_requests(settings, signature, sources):
    """JSON predict bodies for ``settings``: ``sources`` fitted to ``signature`` (None: the server gave none).
    Raises InputError or DataError (one line)."""
    return PredictBodies(fit_inputs(settings, signature, sources), settings.signature_name,
                         settings.request_cache_mb << 20)


class PredictBodies(CachedBodies):
    """``request(k)`` -> the ``RestBody`` of batch k: ``{"signature_name": ..., "instances": [...]}`` as JSON.

    ``inputs`` is ``[(name, Batches, transform or None)]`` (``tfs_user.data.fitting.fit_inputs``), sliced in step.
    """

    def __init__(self, inputs, signature_name, cache_bytes):
        self.inputs = list(inputs)
        self.signature_name = signature_name
        self._start(self.inputs[0][1], cache_bytes)

    def _build(self, k):
        columns = {}
        for name, batches, transform in self.inputs:
            batch = batches.batch(k)
            if transform is not None:
                batch = transform(batch)
            columns[name] = json_values(batch)
        if len(columns) == 1:
            instances = next(iter(columns.values()))
        else:
            instances = [dict(zip(columns, row)) for row in zip(*columns.values())]
        body = {"instances": instances}
        if self.signature_name:
            body = {"signature_name": self.signature_name, **body}
        return RestBody(dumps(body))


def check_response(body, batch_size, endpoint="", outputs=()):
    """None when a predict answer (bytes) has outputs for ``batch_size`` frames and the outputs ``outputs``
    (``--output-names``) where the answer names its outputs (rows of ``{name: value}``, or columnar), else a
    BadResponse saying why."""
    return bad_response(_problem(body, batch_size, outputs), endpoint)


def _problem(body, batch_size, asked=()):
    try:
        answer = json.loads(body)
    except ValueError:
        return f"answer of {len(body)} bytes is not JSON; expected {{\"predictions\": ...}}"
    if not isinstance(answer, dict):
        return "answer is not a JSON object; expected {\"predictions\": ...}"
    if "predictions" in answer:
        rows = answer["predictions"]
        if not isinstance(rows, list) or not rows:
            return "answer has no predictions; expected one row per frame"
        if len(rows) != batch_size:
            return f"predictions has {len(rows)} rows; expected {batch_size} (the batch size)"
        # a model with one output answers plain rows, without its name: nothing to check then
        return missing_outputs(asked, list(rows[0])) if isinstance(rows[0], dict) else None
    outputs = answer.get("outputs")
    if outputs is None or outputs == {}:
        return "answer has no predictions or outputs; expected at least one output"
    for name, value in (outputs.items() if isinstance(outputs, dict) else [("outputs", outputs)]):
        if not isinstance(value, list) or len(value) != batch_size:
            rows = len(value) if isinstance(value, list) else "no"
            return f"output {name!r} has {rows} rows; expected {batch_size} (the batch size)"
    return missing_outputs(asked, list(outputs)) if isinstance(outputs, dict) else None

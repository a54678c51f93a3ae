"""The Open Inference Protocol's REST API on the wire: infer path, JSON or binary request bodies, answer checks.

``POST /v2/models/NAME[/versions/N]/infer`` with ``{"inputs": [{"name", "shape", "datatype", "data"}],
"outputs": [...]}``. With the binary tensor data extension (``binary``) each input carries
``"parameters": {"binary_data_size": n}`` instead of ``data``, its raw bytes (as over gRPC's
``raw_input_contents``) follow the JSON header, and the header's length goes in
``Inference-Header-Content-Length``; outputs are asked as binary too (``binary_data``, or
``binary_data_output`` for all). Bodies are made once per batch and cached as over gRPC.
"""

import json
import math

import numpy as np

from tfs_user.data.fitting import fit_inputs
from tfs_user.data.inputs import InputError
from tfs_user.protocols.bodies import CachedBodies
from tfs_user.protocols.kserve import tensors
from tfs_user.protocols.outcomes import missing_outputs
from tfs_user.protocols.rest import RestBody, dumps
from tfs_user.transport.failures import bad_response

HEADER_LENGTH = "Inference-Header-Content-Length"


def model_path(settings):
    """``/v2/models/NAME[/versions/N]`` of the model under test."""
    path = f"/v2/models/{settings.model_name}"
    return f"{path}/versions/{settings.model_version}" if settings.model_version else path


def build_requests(settings, signature, sources, binary):
    """Infer bodies for ``settings`` (``binary``: the binary tensor data extension, else JSON): ``sources`` fitted
    to ``signature`` (None: the server gave none). Raises InputError or DataError (one line)."""
    datatypes = {name: spec.type_name for name, spec in (signature.inputs.items() if signature else ())}
    return InferBodies(fit_inputs(settings, signature, sources), settings.output_names, binary,
                       settings.request_cache_mb << 20, datatypes)


class InferBodies(CachedBodies):
    """``request(k)`` -> the ``RestBody`` of batch k (JSON, or JSON header + raw tensors when ``binary``)."""

    def __init__(self, inputs, output_names, binary, cache_bytes, datatypes=None):
        self.inputs = list(inputs)
        self.output_names = tuple(output_names)
        self.binary = bool(binary)
        self.datatypes = dict(datatypes or {})
        self._start(self.inputs[0][1], cache_bytes)

    def _build(self, k):
        entries, raws = [], []
        for name, batches, transform in self.inputs:  # several inputs are sliced in step
            batch = batches.batch(k)
            if transform is not None:
                batch = transform(batch)
            if isinstance(batch, list):
                datatype, shape = "BYTES", list(getattr(batch, "shape", None) or (len(batch),))
            else:
                wanted = self.datatypes.get(name)
                datatype = "BF16" if wanted == "BF16" and batch.dtype == "float32" else tensors.datatype_of(batch.dtype)
                shape = list(batch.shape)
            entry = {"name": name, "shape": shape, "datatype": datatype}
            if self.binary:
                raws.append(tensors.to_raw(batch, datatype))
                entry["parameters"] = {"binary_data_size": len(raws[-1])}
            elif datatype in ("BYTES", "BF16"):
                raise InputError(f"input {name!r} is {datatype}, which JSON cannot carry as sent here; expected "
                                 "--binary-data on (a server with the binary tensor data extension), or gRPC")
            else:
                entry["data"] = batch.ravel().tolist()
            entries.append(entry)
        body = {"inputs": entries}
        if self.output_names:
            body["outputs"] = [{"name": n, **({"parameters": {"binary_data": True}} if self.binary else {})}
                               for n in self.output_names]
        elif self.binary:
            body["parameters"] = {"binary_data_output": True}
        header = dumps(body)
        if not self.binary:
            return RestBody(header)
        return RestBody.of(header + b"".join(raws), {HEADER_LENGTH: str(len(header)),
                                                     "Content-Type": "application/octet-stream"})


class Answer:
    """An infer answer: its bytes (``data``) and the JSON header's length when binary tensors follow it (else None;
    the ``Inference-Header-Content-Length`` text as the server sent it, or an int)."""

    __slots__ = ("data", "header_length")

    def __init__(self, data, header_length):
        self.data, self.header_length = data, header_length

    def __len__(self):
        return len(self.data)


def read_answer(answer):
    """``(header dict, {output name: raw bytes})`` of an ``Answer``; ValueError when it is not one (a header length
    that is not a number included)."""
    data, n = answer.data, answer.header_length
    if n is not None:
        n = int(n)  # the answer's Inference-Header-Content-Length: ValueError when it is not a length
    header = json.loads(data[:n] if n is not None else data)
    if not isinstance(header, dict):
        raise ValueError("answer is not a JSON object")
    raws, at = {}, n or 0
    for output in header.get("outputs") or ():
        size = (output.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            raws[output.get("name")] = data[at:at + size]
            at += size
    if n is not None and at != len(data):
        raise ValueError(f"binary outputs take {at - n} bytes after the header, the answer has {len(data) - n}")
    return header, raws


def check_response(answer, batch_size, endpoint="", outputs=()):
    """None when an infer ``Answer`` has outputs for ``batch_size`` frames holding what their shapes declare,
    among them each of ``outputs`` (``--output-names``), else a BadResponse saying why (naming ``endpoint``)."""
    return bad_response(_problem(answer, batch_size, outputs), endpoint)


def _problem(answer, batch_size, asked=()):
    try:
        return _outputs_problem(*read_answer(answer), batch_size, asked)
    except (ValueError, TypeError, AttributeError) as e:  # JSON of another shape (outputs not a list of objects)
        return f"answer of {len(answer)} bytes is not an infer response ({type(e).__name__}: {e})"


def _outputs_problem(header, raws, batch_size, asked):
    outputs = header.get("outputs")
    if not outputs:
        return "response has no output tensors; expected at least one"
    for output in outputs:
        name, shape, datatype = output.get("name"), list(output.get("shape") or ()), output.get("datatype")
        if not shape or shape[0] != batch_size:
            return f"output {name!r} has shape {shape}; expected first dimension {batch_size} (the batch size)"
        count = math.prod(shape)
        if name in raws:
            size = 2 if datatype == "BF16" else (np.dtype(tensors.numpy_dtype(datatype)).itemsize
                                                  if datatype in tensors.DATATYPES and datatype != "BYTES" else None)
            if size is not None and len(raws[name]) != count * size:
                return f"{datatype} contents of {len(raws[name])} bytes; expected {count * size} for shape {shape}"
        elif np.size(np.asarray(output.get("data"), dtype=object)) != count:
            return f"output {name!r} data holds {np.size(np.asarray(output.get('data'), dtype=object))} elements; " \
                   f"expected {count} for shape {shape}"
    return missing_outputs(asked, [output.get("name") for output in outputs])

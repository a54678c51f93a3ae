"""What answering an inference call has in common across the demo server's protocols (Predict, ModelInfer).

``Abort`` (a request error: gRPC status code and details), ``ReceivedRequest`` (one call as
recorded with ``DemoServer(record=True)``), ``find_model`` (a served model and version), shape
checks and texts, image decoding, and ``run_model``: the demo model on decoded inputs, the batch
size and the injected wrong output batch. The protocol handler modules (``tfs_user.demo.handlers``, ``tfs_user.demo.kserve_handlers``)
validate and decode their messages and build their answers around these; none holds state.
"""

import dataclasses

import grpc
import numpy as np

from tfs_user.demo.model import decode_image, model_function


class Abort(Exception):
    """A request error: the gRPC status code and the details text."""

    def __init__(self, code, details):
        super().__init__(details)
        self.code = code
        self.details = details


@dataclasses.dataclass
class ReceivedRequest:
    """One inference call (Predict or ModelInfer) as the server received it (``DemoServer(record=True)``)."""

    index: int
    """1-based arrival number, the same count as ``counts()["requests"]`` (injected failures included)."""
    time: float
    """Arrival, ``time.time()`` seconds."""
    model_name: str
    """``model_spec.name`` (Predict), ``model_name`` (ModelInfer)."""
    version: object
    """``model_spec.version`` (int) or ModelInfer's decimal ``model_version`` as an int; None when the request
    set no version (or, for ModelInfer, one that is not a decimal number)."""
    version_label: str
    """``model_spec.version_label``; "" when not set (always for ModelInfer)."""
    signature_name: str
    """``model_spec.signature_name`` as sent; "" means the model's default (always "" for ModelInfer)."""
    inputs: dict
    """Input name -> numpy array exactly as decoded from the wire (declared dtype and shape; read-only when
    read from bytes: a TensorProto, ModelInfer raw contents; or from ModelInfer typed contents), the list
    of ``bytes`` of a DT_STRING / BYTES tensor, or None when it could not be decoded."""
    metadata: dict
    """gRPC invocation metadata, key -> value (keys lower case, as gRPC delivers them)."""
    peer: str
    """The client's address as gRPC reports it, e.g. "ipv4:127.0.0.1:50412": one per channel (per Locust user)."""
    code: str = None
    """Status code name of the answer ("OK", "UNAVAILABLE", ...); None while the call is in flight."""


def find_model(models, name, version=None):
    """``(ModelConfig or None, served version or None)`` for a model ``name`` in ``models`` (``{name: ModelConfig}``)
    and a version number (None: the latest served). The model is None for an unknown name, the version None
    for one the model does not serve; each protocol words its own NOT_FOUND from these."""
    model = models.get(name)
    if model is None:
        return None, None
    if version is None:
        return model, model.versions[-1]
    return model, (version if version in model.versions else None)


def shape_text(shape):
    """'[1,-1,3]' for a shape."""
    return "[" + ",".join(str(d) for d in shape) + "]"


def shape_fits(model_shape, shape):
    """Whether ``shape`` has the rank of ``model_shape`` and its sizes (-1 in ``model_shape``: any size)."""
    return len(shape) == len(model_shape) and all(e == -1 or e == d for e, d in zip(model_shape, shape))


def decode_images(items):
    """Each encoded image (``bytes``) as float32 RGB pixels ``[h, w, 3]``; Abort INVALID_ARGUMENT if one cannot be decoded."""
    frames = []
    for item in items:
        try:
            frames.append(decode_image(item))
        except Exception as e:  # noqa: BLE001 - any undecodable image is the client's error
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"cannot decode image {len(frames)}: {e}") from None
    return frames


def _batch_of(dtype, data):
    return len(data) if dtype == "string" else (data.shape[0] if data.ndim else 1)


def run_model(model, inputs, bad_output_batch=False):
    """The demo model's answer to validated inputs: ``(scores, batch)``.

    ``inputs`` holds one ``data`` per ``model.inputs`` entry, in that order: a numpy array, or a
    list of encoded images (``bytes``) for a "string" input. The model runs on the first input;
    the scores are float32 ``[batch, output_size]`` (``batch + 1`` rows with ``bad_output_batch``,
    a server answering the wrong number of rows). Abort INVALID_ARGUMENT when the inputs have
    different batch sizes or an image cannot be decoded.
    """
    batches = sorted({_batch_of(dtype, data) for (_, dtype, _), data in zip(model.inputs, inputs)})
    if len(batches) != 1:
        raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"inputs have different batch sizes {batches}")
    for (_, dtype, _), data in zip(model.inputs[1:], inputs[1:]):
        if dtype == "string":
            decode_images(data)  # every image must decode, as the model would read them all
    first, dtype = inputs[0], model.dtype
    if dtype == "string":
        frames = decode_images(first)
        scores = np.concatenate([model_function(f[None], model.output_size) for f in frames]) \
            if frames else np.zeros((0, model.output_size), np.float32)
    else:
        scores = model_function(first, model.output_size)
    if bad_output_batch:
        scores = np.concatenate([scores, np.full((1, model.output_size), 1.0 / model.output_size, np.float32)])
    return scores, batches[0]

"""Serialized ``inference.ModelInferRequest`` bodies, built once, outside the timed section.

Each input's tensor goes in ``raw_input_contents`` (one entry per input, in the order of
``inputs``); the datatype is the signature's (BF16 from float32 data), else the data's own.
``--output-names`` become requested outputs. Bodies are cached per process as for Predict
(``--request-cache-mb``).
"""

from tfs_user.data.fitting import fit_inputs
from tfs_user.protocols.bodies import CachedBodies
from tfs_user.protocols.kserve import tensors
from tfs_user.protocols.kserve.messages import pb2
from tfs_user.settings import DEFAULTS


def build_requests(settings, signature, sources):
    """The RequestFactory for ``settings``: ``sources`` (``tfs_user.data.fitting.open_sources``) fitted to
    ``signature`` (None: the server gave no inputs). Raises InputError or DataError (one line)."""
    fitted = fit_inputs(settings, signature, sources)
    datatypes = {name: spec.type_name for name, spec in (signature.inputs.items() if signature else ())}
    return RequestFactory(fitted, settings.model_name, settings.model_version, settings.output_names,
                          settings.request_cache_mb << 20, datatypes)


class RequestFactory(CachedBodies):
    """Serialized ``ModelInferRequest`` bodies, one per batch: ``request(k)`` -> ``bytes``.

    ``inputs`` is ``[(name, Batches, transform or None)]`` (``tfs_user.data.fitting.fit_inputs``),
    sliced in step; ``datatypes`` maps an input name to the signature's datatype (BF16 is sent
    as such from float32 batches; otherwise a batch's dtype names its datatype). A list batch is
    BYTES (encoded images, shape ``[b]``, or the signature's rank, e.g. ``[b, 1]``). ``model_version`` 0 leaves the version to the server.
    Bodies are cached when all ``batches.period`` distinct ones fit in ``cache_bytes``.
    """

    def __init__(self, inputs, model_name, model_version=0, output_names=(),
                 cache_bytes=DEFAULTS.request_cache_mb << 20, datatypes=None):
        self.inputs = list(inputs)
        self.model_name = model_name
        self.model_version = str(model_version) if model_version else ""
        self.output_names = tuple(output_names)
        self.datatypes = dict(datatypes or {})
        self._start(self.inputs[0][1], cache_bytes)

    def _build(self, k):
        request = pb2.ModelInferRequest(model_name=self.model_name, model_version=self.model_version)
        for name, batches, transform in self.inputs:  # several inputs are sliced in step
            batch = batches.batch(k)
            if transform is not None:
                batch = transform(batch)
            if isinstance(batch, list):
                datatype, shape = "BYTES", getattr(batch, "shape", None) or (len(batch),)
            else:
                wanted = self.datatypes.get(name)
                datatype = "BF16" if wanted == "BF16" and batch.dtype == "float32" else tensors.datatype_of(batch.dtype)
                shape = batch.shape
            request.inputs.add(name=name, datatype=datatype, shape=shape)
            request.raw_input_contents.append(tensors.to_raw(batch, datatype))
        for name in self.output_names:
            request.outputs.add(name=name)
        return request.SerializeToString()

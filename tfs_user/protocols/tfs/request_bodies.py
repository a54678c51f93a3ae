"""Serialized ``tensorflow.serving.PredictRequest`` bodies, built once, outside the timed section.

Bodies carry ``tensor_content`` (raw little-endian bytes: what TF Serving parses fastest) and
are cached per process while all distinct batches fit in the cache budget
(``--request-cache-mb``); otherwise each is built just before its call.
"""

from tfs_user.data.fitting import fit_inputs
from tfs_user.protocols.bodies import CachedBodies
from tfs_user.protocols.tfs.messages import fill_model_spec, predict_pb2
from tfs_user.protocols.tfs.tensors import bytes_to_tensor_proto, ndarray_to_tensor_proto
from tfs_user.settings import DEFAULTS


def build_requests(settings, signature, sources):
    """The RequestFactory for ``settings``: ``sources`` (``tfs_user.data.fitting.open_sources``) fitted to
    ``signature`` (None: the server has no metadata). Raises InputError or DataError (one line)."""
    (name, batches, transform), *more = fit_inputs(settings, signature, sources)
    dts = {name: spec.dt for name, spec in (signature.inputs.items() if signature else ())}
    return RequestFactory(batches, settings.model_name, name, settings.signature_name, settings.model_version,
                          settings.version_label, settings.request_cache_mb << 20, transform, more,
                          settings.output_names, dts)


class RequestFactory(CachedBodies):
    """Serialized ``tensorflow.serving.PredictRequest`` bodies, one per batch.

    The request carries ``model_spec`` (name, optional version or version label,
    signature_name) and its input tensors (``tensor_content``), as in the TFS
    API message ``predict.proto``. ``request(k)`` returns ``bytes``. Bodies are
    cached when all ``batches.period`` distinct ones fit in ``cache_bytes``;
    ``cached`` tells which. ``transform(batch) -> batch`` (e.g. a dtype cast or
    a channel-axis move, see ``tfs_user.data.inputs``) runs on each batch first.
    ``more_inputs`` holds further ``(name, Batches, transform)`` for models with
    several inputs; all Batches must have the same rows and batch size. ``output_names`` go in
    ``output_filter`` (empty: the server returns every output). ``dts`` maps an input name to the
    signature's DataType: ``DT_BFLOAT16`` inputs go as bfloat16 words from float32 batches.
    """

    def __init__(self, batches, model_name, input_name, signature_name="", model_version=0, version_label="",
                 cache_bytes=DEFAULTS.request_cache_mb << 20, transform=None, more_inputs=(), output_names=(),
                 dts=None):
        self.inputs = [(input_name, batches, transform), *more_inputs]
        self.model_name = model_name
        self.signature_name = signature_name
        self.model_version = model_version
        self.version_label = version_label
        self.output_names = tuple(output_names)
        self.dts = dict(dts or {})
        self._start(self.inputs[0][1], cache_bytes)

    def _build(self, k):
        request = predict_pb2.PredictRequest()
        fill_model_spec(request.model_spec, self.model_name, self.model_version, self.version_label, self.signature_name)
        for name, batches, transform in self.inputs:  # several inputs are sliced in step
            batch = batches.batch(k)
            if transform is not None:
                batch = transform(batch)
            if isinstance(batch, list):
                proto = bytes_to_tensor_proto(batch, getattr(batch, "shape", None))
            else:
                proto = ndarray_to_tensor_proto(batch, self.dts.get(name))
            request.inputs[name].CopyFrom(proto)
        request.output_filter.extend(self.output_names)
        return request.SerializeToString()

"""No silent overflow (issue 30): data cast to an input's dtype either keeps its values or stops with one line
naming the input, the range found and the dtype, for every numeric dtype, through both protocols' request
builders (the check lives in tfs_user.data, which both use). ``--allow-lossy-cast`` clips instead; synthetic
frames are drawn inside the dtype's range. Two real `locust` runs show the line and the clipped values on the wire.
"""

import numpy as np
import pytest

from tfs_user.data import fitting
from tfs_user.data.inputs import InputError, Signature, TensorSpec
from tfs_user.demo.model import ModelConfig
from tfs_user.protocols.kserve import request_bodies as kserve_bodies, tensors as kserve_tensors
from tfs_user.protocols.kserve.messages import pb2
from tfs_user.protocols.tfs import request_bodies as tfs_bodies
from tfs_user.protocols.tfs.messages import predict_pb2
from tfs_user.protocols.tfs.tensors import NUMPY_TO_DT, tensor_proto_to_ndarray
from tfs_user.settings import Settings

PROTOCOLS = ("tfs", "kserve")
I64, U64 = np.iinfo(np.int64), np.iinfo(np.uint64)

# (target dtype, file dtype, the file's values, the range the message names or None when the values fit)
TABLE = [
    ("float16", "float32", [-65504, 65504], None),
    ("float16", "float32", [0, 70000], "0..70000"),
    ("float16", "float64", [np.nan, np.inf, -1.5], None),  # NaN and inf stay NaN and inf
    ("float32", "float64", [-3e38, 3e38], None),
    ("float32", "float64", [-1e39, 1], "-1e+39..1"),
    ("float64", "float64", [-1e308, 1e308], None),  # nothing wider to come from
    ("float64", "int64", [I64.min, I64.max], None),
    ("int8", "float32", [-128, 127], None),
    ("int8", "float32", [200, -200], "-200..200"),
    ("int8", "uint8", [0, 255], "0..255"),
    ("int16", "int64", [-32768, 32767], None),
    ("int16", "float64", [0, 40000.5], "0..40000.5"),
    ("int32", "int64", [-2**31, 2**31 - 1], None),
    ("int32", "int64", [-2**31 - 1, 0], "-2147483649..0"),
    ("int64", "uint64", [0, I64.max], None),
    ("int64", "uint64", [0, 2**63], "0..9223372036854775808"),
    ("int64", "float64", [-np.inf, 0], "-inf..0"),
    ("uint8", "float32", [0, 255], None),
    ("uint8", "float32", [300, -1, 255.5, 1e10], "-1..10000000000"),
    ("uint16", "int64", [0, 65535], None),
    ("uint16", "int64", [70000, 1], "1..70000"),
    ("uint32", "int64", [0, 2**32 - 1], None),
    ("uint32", "int8", [-1, 5], "-1..5"),
    ("uint64", "int64", [0, I64.max], None),
    ("uint64", "float64", [1, 2.0**64], "1..1.8446744073709552e+19"),
    ("bool", "float32", [0, 1], None),
    ("bool", "float32", [0.5, 1], "0.5..1"),
    ("bool", "int64", [2, 0], "0..2"),
    ("int32", "float32", [np.nan, 1], "NaN"),
]
KSERVE_NAMES = {np.dtype(n): name for name in kserve_tensors.DATATYPES if name not in ("BF16", "BYTES")
                for n in [kserve_tensors.numpy_dtype(name)]}


def _signature(protocol, dtype):
    dtype = np.dtype(dtype)
    if protocol == "tfs":
        return Signature({"x": TensorSpec("x", NUMPY_TO_DT[dtype], (-1, -1))})
    name = KSERVE_NAMES[dtype]
    return Signature({"x": TensorSpec("x", kserve_tensors.tf_dt(name), (-1, -1), name)})


def _first_batch(protocol, settings, signature, sources):
    """The array the first request carries for input x, decoded from the serialized request."""
    if protocol == "tfs":
        body = tfs_bodies.build_requests(settings, signature, sources).request(0)
        return tensor_proto_to_ndarray(predict_pb2.PredictRequest.FromString(body).inputs["x"])
    body = kserve_bodies.build_requests(settings, signature, sources).request(0)
    request = pb2.ModelInferRequest.FromString(body)
    tensor = request.inputs[0]
    return kserve_tensors.from_raw(request.raw_input_contents[0], tensor.datatype, tuple(tensor.shape))


def _settings(protocol, **fields):
    return Settings(protocol=protocol, model_name="m", batch_size=1, request_cache_mb=0, **fields)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_every_dtype_keeps_the_values_or_stops_naming_input_range_and_dtype(protocol):
    seen = set()
    for target, source, values, found in TABLE:
        data = np.array([values], dtype=source)
        case = f"{protocol}: {source} {values} -> {target}"
        signature = _signature(protocol, target)
        dt_name = signature.inputs["x"].dt_name
        settings = _settings(protocol)
        if found is None:
            sent = _first_batch(protocol, settings, signature, [("x", data)])
            assert sent.dtype == np.dtype(target), case
            np.testing.assert_array_equal(sent, data.astype(target), err_msg=case)
            continue
        with pytest.raises(InputError) as stopped:
            _first_batch(protocol, settings, signature, [("x", data)])
        message = str(stopped.value)
        assert message.startswith(f"input 'x' ({dt_name}): the data's "), (case, message)
        if found == "NaN":
            assert f"include NaN, which {target} cannot hold" in message, (case, message)
        else:
            assert f"values {found} " in message and target in message, (case, message)
        assert "--allow-lossy-cast" in message and "\n" not in message, (case, message)
        seen.add(np.dtype(target).kind)
    assert seen == {"f", "i", "u", "b"}  # the table stops each kind of dtype at least once


LOSSY = [  # (target, file dtype, values, what goes out with --allow-lossy-cast)
    ("uint8", "float32", [300, -1, 255.5, 1e10], [255, 0, 255, 255]),
    ("int8", "float32", [200, -200], [127, -128]),
    ("bool", "float32", [0.5, 0], [True, False]),
    ("uint16", "int64", [70000, -3], [65535, 0]),
    ("int64", "uint64", [2**64 - 1, 1], [I64.max, 1]),
    ("int64", "float64", [2.0**63, -np.inf], [I64.max - 1023, I64.min]),  # the largest float64 below 2**63
    ("int32", "float32", [np.nan, 7], [0, 7]),
    ("float16", "float64", [1e6, np.inf, -1e6], [65504, np.inf, -65504]),
]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("target, source, values, sent", LOSSY)
def test_allow_lossy_cast_clips_to_the_range(protocol, target, source, values, sent):
    data = np.array([values], dtype=source)
    got = _first_batch(protocol, _settings(protocol, allow_lossy_cast=True), _signature(protocol, target),
                       [("x", data)])
    np.testing.assert_array_equal(got, np.array([sent], dtype=target))


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("target", sorted({t for t, _, _, _ in TABLE}))
def test_synthetic_frames_lie_inside_the_dtype_range(protocol, target):
    signature = Signature({"x": TensorSpec("x", _signature(protocol, target).inputs["x"].dt, (-1, 64),
                                           _signature(protocol, target).inputs["x"].type_name)})
    settings = _settings(protocol)
    factory = (tfs_bodies if protocol == "tfs" else kserve_bodies).build_requests(
        settings, signature, fitting.open_sources(settings))
    frames = np.concatenate([_decode(protocol, factory.request(k)) for k in range(8)])
    assert frames.dtype == np.dtype(target) and frames.shape == (8, 64)
    low, high = {"int8": (0, 127), "bool": (False, True)}.get(target, (0, 255))
    assert frames.min() >= low and frames.max() <= high, (frames.min(), frames.max())
    assert len(np.unique(frames)) > (1 if target == "bool" else 100)  # bool: both values; others spread


def _decode(protocol, body):
    if protocol == "tfs":
        return tensor_proto_to_ndarray(predict_pb2.PredictRequest.FromString(body).inputs["x"])
    request = pb2.ModelInferRequest.FromString(body)
    return kserve_tensors.from_raw(request.raw_input_contents[0], request.inputs[0].datatype,
                                   tuple(request.inputs[0].shape))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_real_run_stops_with_one_line_or_sends_clipped_values(protocol, demo_server, run_locust, tmp_path):
    server = demo_server(models=[ModelConfig(name="m", input_name="x", dtype="int8", shape=(-1, 2), output_size=1)],
                         record=True)
    path = tmp_path / "wide.npy"
    np.save(path, np.array([[200, -200]], dtype=np.float32))
    args = ("--host", server.address, "-u", "1", "-r", "1", "--iterations", "1", "--warmup-iterations", "0",
            "--model-name", "m", "--protocol", protocol, "--images-numpy-path", str(path))
    run = run_locust(*args)
    assert run.returncode == 2 and "Traceback" not in run.output, run.output
    errors = [line for line in run.output.splitlines() if line.startswith("error: ")]
    dt_name = "DT_INT8" if protocol == "tfs" else "INT8"
    assert errors == [f"error: input 'x' ({dt_name}): the data's values -200..200 lie outside int8's range -128..127; "
                      "a cast to int8 would change them. Expected data within the range (rescale it, or give "
                      "--dtype), or --allow-lossy-cast to clip values to the range"], run.output
    assert server.counts()["requests"] == 0
    run = run_locust(*args, "--allow-lossy-cast")
    assert run.returncode == 0, run.output
    (request,) = server.received()
    assert request.code == "OK" and request.inputs["x"].tolist() == [[127, -128]]

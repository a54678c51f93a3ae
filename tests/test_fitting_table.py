"""Data that does not fit (issue 12, item 3), as a whole kind: every file rank 1-5, signatures with fixed
and -1 dims, every --layout. Each combination either builds requests whose bytes are what the table
below expects (and that the demo server's own Predict validation accepts), or stops with one line
(a ValueError: OptionError, DataError, InputError), never another exception.

The expectation is computed here, independently of tfs_user.data.inputs: the first batch is rows 0..b-1
of the file, transposed only as the layout rule says, cast to the signature's dtype. Most
combinations run in-process (``request_bodies.build_requests``); a handful run through real `locust`
processes against a recording DemoServer.
"""

import itertools

import numpy as np
import pytest

from tfs_user.data import fitting
from tfs_user.protocols.tfs import request_bodies
from tfs_user.data.files import DataError
from tfs_user.demo.handlers import Abort, predict
from tfs_user.demo.model import ModelConfig
from tfs_user.data.inputs import Signature, TensorSpec
from tfs_user.protocols.tfs.messages import predict_pb2, types_pb2
from tfs_user.settings import LAYOUTS, Settings
from tfs_user.protocols.tfs.tensors import tensor_proto_to_ndarray

BATCH = 2
FILE_SHAPES = [
    (4,), (4, 3), (4, 8), (8, 8, 3), (4, 8, 3), (4, 3, 8), (4, 8, 8, 3), (4, 3, 8, 8), (4, 3, 3, 3), (4, 8, 8, 8),
    (4, 2, 8, 8, 3), (4, 2, 3, 8, 8), (4, 2, 8, 3, 8),
]
SIGNATURES = [
    (-1,), (-1, 3), (-1, -1), (-1, 8, 3), (-1, -1, -1), (-1, 8, 8, 3), (-1, 3, 8, 8), (-1, -1, -1, 3),
    (-1, 3, -1, -1), (-1, -1, -1, -1), (2, 8, 8, 3), (4, 8, 8, 3), (-1, 3, 3, 3), (-1, 2, 8, 8, 3), (-1, -1, -1, -1, -1),
]
TO_NCHW, TO_NHWC = (0, 3, 1, 2), (0, 2, 3, 1)
MOVE = {"nhwc-to-nchw": TO_NCHW, "nchw-to-nhwc": TO_NHWC}


def expected_axes(file_shape, signature, layout):
    """The transposition the rule asks for: () = as stored, axes, or None = the run must stop.

    Rule (README "Pre-flight"): data rank = signature rank, batch axis first (a 1-d file [n] feeds an
    input [-1], one value per example; issue 30); a fixed batch
    dim equals --batch-size; ``keep`` sends as stored, a forced move transposes 3-d frames,
    ``auto`` sends as stored when that fits, else the only channel-axis move that fits.
    """
    if len(file_shape) < 1 or (signature is not None and (
            len(file_shape) != len(signature) or 0 < signature[0] != BATCH)):
        return None
    frames = file_shape[1:]

    def fits(axes):
        if axes and len(frames) != 3:
            return False
        shape = tuple((BATCH, *frames)[i] for i in axes)[1:] if axes else frames
        return signature is None or all(m in (-1, d) for d, m in zip(shape, signature[1:]))

    if layout == "keep":
        return () if fits(()) else None
    if layout in MOVE:
        return MOVE[layout] if fits(MOVE[layout]) else None
    if fits(()):
        return ()
    moves = [a for a in (TO_NCHW, TO_NHWC) if fits(a)]
    return moves[0] if len(moves) == 1 and signature is not None else None


def _file(tmp_path, shape):
    path = tmp_path / ("x".join(map(str, shape)) + ".npy")
    if not path.exists():
        np.save(path, np.arange(np.prod(shape), dtype=np.float64).reshape(shape))  # distinct values, cast to float32
    return str(path)


def _signature(shape):
    if shape is None:
        return None
    return Signature({"x": TensorSpec("x", types_pb2.DT_FLOAT, shape)})


def _outcome(tmp_path, file_shape, signature_shape, layout):
    """('ran', decoded first request) or ('stopped', message) for one combination."""
    settings = Settings(model_name="m", input_name="x", images_numpy_path=_file(tmp_path, file_shape),
                        layout=layout, batch_size=BATCH, request_cache_mb=0, dtype="float32")
    try:
        requests = request_bodies.build_requests(settings, _signature(signature_shape), fitting.open_sources(settings))
    except ValueError as e:
        return "stopped", str(e)
    return "ran", predict_pb2.PredictRequest.FromString(requests.request(0))


COMBINATIONS = list(itertools.product(FILE_SHAPES, SIGNATURES + [None], LAYOUTS))


def test_every_combination_runs_with_the_right_bytes_or_stops_with_one_line(tmp_path):
    counts = {"ran": 0, "stopped": 0}
    for file_shape, signature_shape, layout in COMBINATIONS:
        case = f"file {file_shape}, signature {signature_shape}, --layout {layout}"
        axes = expected_axes(file_shape, signature_shape, layout)
        kind, result = _outcome(tmp_path, file_shape, signature_shape, layout)  # any other exception fails here
        counts[kind] += 1
        if axes is None:
            assert kind == "stopped", case
            assert result and "\n" not in result, (case, result)
            continue
        assert kind == "ran", (case, result)
        rows = np.arange(np.prod(file_shape), dtype=np.float64).reshape(file_shape)[:BATCH]
        want = np.transpose(rows, axes).astype(np.float32) if axes else rows.astype(np.float32)
        got = tensor_proto_to_ndarray(result.inputs["x"])
        assert got.dtype == np.float32 and got.shape == want.shape and np.array_equal(got, want), case
        if signature_shape is not None:  # the server's own validation (TF Serving's checks) accepts it
            model = ModelConfig(name="m", input_name="x", shape=signature_shape, output_size=2)
            try:
                predict({"m": model}, result)
            except Abort as e:
                pytest.fail(f"{case}: the server refuses it: {e.details}")
    assert counts["ran"] > 50 and counts["stopped"] > 50, counts  # the table covers both outcomes


def test_a_file_without_its_batch_axis_is_named_as_such(tmp_path):
    kind, message = _outcome(tmp_path, (8, 8, 3), (-1, -1, -1, 3), "auto")
    assert kind == "stopped"
    assert message.startswith("the data of shape [8,8,3] has no batch axis: input 'x' [-1,-1,-1,3] takes rank 4 with "
                              "the batch axis first, the data has rank 3; save it with one, e.g. "
                              "numpy.save(path, array[numpy.newaxis])"), message


@pytest.mark.parametrize("layout", ["nhwc-to-nchw", "nchw-to-nhwc"])
@pytest.mark.parametrize("signature_shape", [(-1, -1, -1, 3), None])
def test_a_forced_layout_on_frames_that_are_not_3d_is_one_line(tmp_path, layout, signature_shape):
    kind, message = _outcome(tmp_path, (8, 8, 3), signature_shape, layout)
    assert (kind, message) == ("stopped", f"--layout {layout} moves the channel axis of 3-d frames [h,w,c] or [c,h,w], "
                                          "but the data of shape [8,8,3] has frames [8,3]; expected --layout auto or keep")


def test_a_0d_file_is_refused_by_the_loader_and_a_1d_file_feeds_a_rank_1_input(tmp_path):
    path = tmp_path / "scalar.npy"
    np.save(path, np.float32(3))
    with pytest.raises(DataError, match=r"has shape \[\]; expected at least 1 dimension"):
        fitting.open_sources(Settings(images_numpy_path=str(path)))
    kind, request = _outcome(tmp_path, (4,), (-1,), "auto")  # issue 30: [n] was refused as < 2 dimensions
    assert kind == "ran" and tensor_proto_to_ndarray(request.inputs["x"]).tolist() == [0.0, 1.0]
    kind, message = _outcome(tmp_path, (4, 1), (-1,), "auto")  # and [n,1] is the wrong rank, with the reason
    assert kind == "stopped" and "has rank 2 but input 'x' [-1] takes rank 1" in message, message


# --- a handful through real locust processes, compared with what the server received ---

REAL_RUNS = [
    ((4,), (-1,), "auto"),  # one value per example from a 1-d file
    ((8, 8, 3), (-1, -1, -1, 3), "auto"),  # no batch axis: stops
    ((8, 8, 3), (-1, -1, -1, 3), "nhwc-to-nchw"),  # today: IndexError traceback, exit 1
    ((4, 8, 8, 3), (-1, 3, 8, 8), "auto"),  # moved to NCHW
    ((4, 3, 8, 8), (-1, -1, -1, 3), "nchw-to-nhwc"),  # forced move
    ((4, 8, 8, 3), (-1, 3, 8, 8), "keep"),  # as stored does not fit: stops
]


@pytest.mark.parametrize("file_shape,signature_shape,layout", REAL_RUNS)
def test_real_runs_match_the_table(file_shape, signature_shape, layout, demo_server, run_locust, tmp_path):
    server = demo_server(models=[ModelConfig(name="m", input_name="x", shape=signature_shape, output_size=2)],
                         record=True)
    run = run_locust("--host", server.address, "-u", "1", "-r", "1", "--iterations", "2", "--warmup-iterations", "0",
                     "--model-name", "m", "--batch-size", str(BATCH), "--layout", layout,
                     "--images-numpy-path", _file(tmp_path, file_shape))
    assert "Traceback" not in run.output, run.output
    axes = expected_axes(file_shape, signature_shape, layout)
    if axes is None:
        assert run.returncode == 2, run.output
        errors = [line for line in run.output.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1, run.output
        assert server.counts()["requests"] == 0
        return
    assert run.returncode == 0, run.output
    data = np.arange(np.prod(file_shape), dtype=np.float64).reshape(file_shape)
    received = server.received()
    assert [r.code for r in received] == ["OK", "OK"]
    for k, request in enumerate(received):
        rows = data[[(k * BATCH + j) % file_shape[0] for j in range(BATCH)]]
        want = (np.transpose(rows, axes) if axes else rows).astype(np.float32)
        assert np.array_equal(request.inputs["x"], want) and request.inputs["x"].dtype == np.float32

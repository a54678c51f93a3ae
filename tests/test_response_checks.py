"""Responses checked for what was asked (issue 30), both protocols: contents that hold the elements the shape
declares, the outputs --output-names asked for present, and those names checked against the signature before
the run. And bfloat16 (both protocols share its rounding): TF Serving gets DT_BFLOAT16 as 16-bit words, and a
NaN stays a NaN.
"""

import numpy as np
import pytest

from tfs_user.data.inputs import InputError, Signature, TensorSpec
from tfs_user.demo.model import ModelConfig
from tfs_user.protocols.kserve import outcomes as kserve_outcomes, request_bodies as kserve_bodies, tensors
from tfs_user.protocols.kserve.messages import pb2
from tfs_user.protocols.tfs import outcomes as tfs_outcomes, request_bodies as tfs_bodies
from tfs_user.protocols.tfs.messages import meta_graph_pb2, predict_pb2, types_pb2
from tfs_user.protocols.tfs.tensors import ndarray_to_tensor_proto, tensor_proto_to_ndarray
from tfs_user.settings import Settings


def _predict_response(outputs):
    response = predict_pb2.PredictResponse()
    for name, proto in outputs.items():
        response.outputs[name].CopyFrom(proto)
    return response.SerializeToString()


def _declared(proto, shape):
    del proto.tensor_shape.dim[:]
    proto.tensor_shape.dim.extend(type(proto.tensor_shape).Dim(size=d) for d in shape)
    return proto


def test_tfs_contents_must_hold_the_declared_elements():
    good = ndarray_to_tensor_proto(np.ones((2, 4), np.float32))
    assert tfs_outcomes.check_response(_predict_response({"prob": good}), 2) is None
    three_rows = _declared(ndarray_to_tensor_proto(np.ones((3, 4), np.float32)), (2, 4))  # [2,4] declared, 3 rows held
    assert str(tfs_outcomes.check_response(_predict_response({"prob": three_rows}), 2)) == (
        "output 'prob': DT_FLOAT tensor_content of 48 bytes; expected 32 for shape [2, 4]")
    typed = ndarray_to_tensor_proto(np.ones((2, 3), np.int32))
    typed.ClearField("tensor_content")
    typed.int_val.extend([1] * 7)  # more values than [2,3] holds
    assert "holds 7 values in int_val; expected 6" in str(tfs_outcomes.check_response(_predict_response({"y": typed}), 2))
    del typed.int_val[:]
    typed.int_val.append(5)  # one value fills the tensor (TensorProto rule)
    assert tfs_outcomes.check_response(_predict_response({"y": typed}), 2) is None
    del typed.int_val[:]
    assert "holds 0 values in int_val" in str(tfs_outcomes.check_response(_predict_response({"y": typed}), 2))
    strings = predict_pb2.PredictResponse()
    strings.outputs["s"].dtype = types_pb2.DT_STRING
    strings.outputs["s"].tensor_shape.dim.add(size=2)
    strings.outputs["s"].string_val.extend([b"a", b"b", b"c"])
    assert "holds 3 values in string_val; expected 2" in str(tfs_outcomes.check_response(strings.SerializeToString(), 2))


def _infer_response(names):
    response = pb2.ModelInferResponse(model_name="m")
    for name in names:
        response.outputs.add(name=name, datatype="FP32", shape=[2, 4])
        response.raw_output_contents.append(np.ones((2, 4), np.float32).tobytes())
    return response.SerializeToString()


CHECKS = {"tfs": (tfs_outcomes.check_response,
                  lambda names: _predict_response({n: ndarray_to_tensor_proto(np.ones((2, 4), np.float32))
                                                   for n in names})),
          "kserve": (kserve_outcomes.check_response, _infer_response)}


@pytest.mark.parametrize("protocol", CHECKS)
def test_requested_outputs_must_be_in_the_response(protocol):
    check, response = CHECKS[protocol]
    assert check(response(["prob", "logits"]), 2, "", ("logits", "prob")) is None
    assert check(response(["prob"]), 2, "", ()) is None
    assert str(check(response(["prob"]), 2, "h:1", ("prob", "logits"))) == (
        "response has no output 'logits' (asked for with --output-names); its outputs: prob (endpoint h:1)")


def _signature(protocol):
    dt, name = (types_pb2.DT_FLOAT, "") if protocol == "tfs" else (types_pb2.DT_FLOAT, "FP32")
    spec = TensorSpec("x", dt, (-1, 2), name)
    return Signature({"x": spec}, {"prob": TensorSpec("prob", dt, (-1, 4), name),
                                   "logits": TensorSpec("logits", dt, (-1, 4), name)})


BODIES = {"tfs": tfs_bodies, "kserve": kserve_bodies}


@pytest.mark.parametrize("protocol", BODIES)
def test_output_names_are_checked_against_the_signature_before_the_run(protocol):
    data = [("x", np.zeros((1, 2), np.float32))]
    settings = Settings(protocol=protocol, model_name="m", output_names=("prob", "probb"))
    with pytest.raises(InputError) as stopped:
        BODIES[protocol].build_requests(settings, _signature(protocol), data)
    assert str(stopped.value) == "--output-names 'probb' is not an output of model 'm'; its outputs: logits, prob"
    ok = Settings(protocol=protocol, model_name="m", output_names=("logits",))
    assert BODIES[protocol].build_requests(ok, _signature(protocol), data).request(0)
    # a signature that lists no outputs (a server without them) checks nothing
    BODIES[protocol].build_requests(settings, Signature(_signature(protocol).inputs), data).request(0)


@pytest.mark.parametrize("protocol", ["tfs", "kserve"])
def test_a_real_run_with_a_mistyped_output_name_stops_before_it_starts(protocol, demo_server, run_locust):
    server = demo_server(models=[ModelConfig(name="m", shape=(-1, 2), output_size=1)])
    run = run_locust("--host", server.address, "-u", "1", "-r", "1", "--iterations", "1", "--model-name", "m",
                     "--protocol", protocol, "--output-names", "porb")
    assert run.returncode == 2, run.output
    errors = [line for line in run.output.splitlines() if line.startswith("error: ")]
    assert errors == ["error: --output-names 'porb' is not an output of model 'm'; its outputs: prob"], run.output
    assert server.counts()["requests"] == 0


# --- bfloat16 ---

BITS = [  # float32 bits -> bfloat16 word (round to nearest even; NaN stays NaN with its sign, quiet bit set)
    (0x3F800000, 0x3F80), (0xC0200000, 0xC020), (0x3F808000, 0x3F80), (0x3F818000, 0x3F82), (0x3F80C000, 0x3F81),
    (0x7F800000, 0x7F80), (0x80000000, 0x8000), (0x7F800001, 0x7FC0), (0xFFFFFFFF, 0xFFFF), (0x7FC00000, 0x7FC0),
    (0xFF800001, 0xFFC0), (0x7FBFFFFF, 0x7FFF),
]


def _bf16_signature_def():
    signature = meta_graph_pb2.SignatureDef()
    signature.inputs["x"].dtype = types_pb2.DT_BFLOAT16
    for size in (-1, len(BITS)):
        signature.inputs["x"].tensor_shape.dim.add(size=size)
    return signature


@pytest.mark.parametrize("protocol", ["tfs", "kserve"])
def test_bfloat16_goes_as_16_bit_words_and_nan_stays_nan(protocol):
    values = np.array([[b for b, _ in BITS]], dtype=np.uint32).view(np.float32)
    words = [w for _, w in BITS]
    settings = Settings(protocol=protocol, model_name="m")
    if protocol == "tfs":  # as pre-flight reads it from GetModelMetadata
        signature = Signature.from_proto(_bf16_signature_def())
        body = tfs_bodies.build_requests(settings, signature, [("x", values)]).request(0)
        proto = predict_pb2.PredictRequest.FromString(body).inputs["x"]
        assert proto.dtype == types_pb2.DT_BFLOAT16 and [d.size for d in proto.tensor_shape.dim] == [1, len(BITS)]
        assert np.frombuffer(proto.tensor_content, "<u2").tolist() == words
        decoded = tensor_proto_to_ndarray(proto)
    else:
        spec = TensorSpec("x", types_pb2.DT_BFLOAT16, (-1, len(BITS)), "BF16", np.dtype(np.float32))
        body = kserve_bodies.build_requests(settings, Signature({"x": spec}), [("x", values)]).request(0)
        request = pb2.ModelInferRequest.FromString(body)
        assert request.inputs[0].datatype == "BF16"
        assert np.frombuffer(request.raw_input_contents[0], "<u2").tolist() == words
        decoded = tensors.from_raw(request.raw_input_contents[0], "BF16", (1, len(BITS)))
    assert np.isnan(decoded).tolist() == np.isnan(values).tolist()  # NaN in, NaN out: no inf, no 0.0


# --- shapes from the signature: encoded images at the input's rank ---

@pytest.mark.parametrize("protocol, transport", [("tfs", "grpc"), ("kserve", "grpc"), ("tfs", "http"), ("kserve", "http")])
@pytest.mark.parametrize("shape", [(-1,), (-1, 1), (-1, -1)])
def test_encoded_images_go_at_the_signature_rank(protocol, transport, shape, demo_server, run_locust, tmp_path):
    from PIL import Image

    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        Image.new("RGB", (4, 4), (i * 80, 0, 0)).save(folder / f"{i}.png")
    server = demo_server(models=[ModelConfig(name="m", input_name="image_bytes", dtype="string", shape=shape,
                                             output_size=1)], record=True, rest_port=0)
    host = f"http://{server.rest_address}" if transport == "http" else server.address
    extra = ("--binary-data", "on") if (protocol, transport) == ("kserve", "http") else ()
    run = run_locust("--host", host, *extra, "-u", "1", "-r", "1", "--iterations", "2", "--warmup-iterations", "0",
                     "--model-name", "m", "--protocol", protocol, "--batch-size", "2", "--images-dir", str(folder))
    assert run.returncode == 0, run.output  # was: every request failed "Expected [-1,1], got [2]" for (-1, 1)
    received = server.received()
    assert [r.code for r in received] == ["OK", "OK"]
    # the server checks the shape against its signature (a [2] tensor for [-1,1] fails INVALID_ARGUMENT)
    assert [len(r.inputs["image_bytes"]) for r in received] == [2, 2]


def test_an_input_of_several_images_per_example_stops_before_the_run(tmp_path):
    from tfs_user.data.fitting import fit_inputs

    signature = Signature({"image_bytes": TensorSpec("image_bytes", types_pb2.DT_STRING, (-1, 2))})
    with pytest.raises(InputError) as stopped:
        fit_inputs(Settings(model_name="m"), signature, [("", [b"a", b"b"])])
    assert str(stopped.value) == ("input 'image_bytes' [-1, 2] takes 2 encoded images per example; --images-dir gives "
                                  "one image per example (an input [-1] or [-1,1]); expected a model input of that shape")


@pytest.fixture
def answers_other_outputs():
    """A gRPC server whose Predict answers every batch with one output named 'other' (not what was asked)."""
    from concurrent import futures

    import grpc

    def predict(body, context):
        request = predict_pb2.PredictRequest.FromString(body)
        batch = request.inputs["x"].tensor_shape.dim[0].size
        return _predict_response({"other": ndarray_to_tensor_proto(np.zeros((batch, 1), np.float32))})

    handler = grpc.method_handlers_generic_handler("tensorflow.serving.PredictionService", {
        "Predict": grpc.unary_unary_rpc_method_handler(predict)})
    server = grpc.server(futures.ThreadPoolExecutor(2), handlers=[handler])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(None)


def test_a_real_run_counts_a_response_without_the_asked_output_as_a_failure(answers_other_outputs, run_locust):
    run = run_locust("--host", answers_other_outputs, "-u", "1", "-r", "1", "--iterations", "2", "--warmup-iterations",
                     "0", "--skip-preflight", "--input-name", "x", "--synthetic-shape", "4", "--output-names", "prob")
    assert run.returncode == 1 and "Traceback" not in run.output, run.output
    assert run.locust_csv()["Predict resnet"]["Failure Count"] == "2", run.output
    assert [row["Error"] for row in run.failures_csv()] == [
        "response has no output 'prob' (asked for with --output-names); its outputs: other"], run.failures_csv()


def test_rest_answers_are_checked_for_the_asked_outputs_too():
    import json

    from tfs_user.protocols.kserve import rest as kserve_rest
    from tfs_user.protocols.tfs import rest as tfs_rest

    columnar = json.dumps({"outputs": {"prob": [[1.0], [2.0]]}}).encode()
    assert tfs_rest.check_response(columnar, 2, "", ("prob",)) is None
    assert str(tfs_rest.check_response(columnar, 2, "", ("logits",))) == (
        "response has no output 'logits' (asked for with --output-names); its outputs: prob")
    rows = json.dumps({"predictions": [{"prob": 1.0}, {"prob": 2.0}]}).encode()
    assert "no output 'logits'" in str(tfs_rest.check_response(rows, 2, "", ("logits",)))
    plain = json.dumps({"predictions": [[1.0], [2.0]]}).encode()  # one output, unnamed: nothing to check
    assert tfs_rest.check_response(plain, 2, "", ("logits",)) is None
    header = json.dumps({"outputs": [{"name": "prob", "shape": [2, 1], "datatype": "FP32", "data": [1.0, 2.0]}]})
    answer = kserve_rest.Answer(header.encode(), None)
    assert kserve_rest.check_response(answer, 2, "", ("prob",)) is None
    assert "no output 'logits'" in str(kserve_rest.check_response(answer, 2, "", ("logits",)))

"""The program tests/kserve_server.py runs with KServe's own virtualenv: a small ``kserve.Model`` served by
``kserve.ModelServer`` on the ports it is given, bound to 127.0.0.1.

``python kserve_model.py CONFIG_JSON`` with CONFIG_JSON = {"name", "http_port", "grpc_port", "fail_every",
"delay_ms"}. The model: input FP32 [-1,4] -> output ``output-0`` FP32 [-1,3], ``y = x @ WEIGHTS`` (numpy,
deterministic, no weights from anywhere). ``fail_every`` N > 0: every Nth predict call (counted over all
endpoints, from 1) raises ``kserve.errors.InferenceError``; ``delay_ms``: each predict call awaits that long
first (the event loop stays free, as a real model's I/O would leave it).

Imports only the standard library at the top: the test process imports ``WEIGHTS`` and ``expected`` from here.
"""

import asyncio
import itertools
import json
import sys
import types

INPUT, OUTPUT = "input-0", "output-0"
WEIGHTS = [[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, -1.0], [1.0, -1.0, 0.0]]
"""The model's 4x3 matrix: output = input @ WEIGHTS, per frame."""


def expected(rows):
    """What the model answers for ``rows`` (a list of frames of 4 numbers): a list of frames of 3 floats."""
    return [[sum(x * w[j] for x, w in zip(row, WEIGHTS)) for j in range(3)] for row in rows]


def _bind_loopback():
    """KServe 0.21 has no host setting: its RESTServer passes ``host="0.0.0.0"`` to uvicorn.Config and its
    GRPCServer listens on ``[::]:PORT``. Narrow both to 127.0.0.1 (tests listen on loopback only), nothing else."""
    import uvicorn
    from grpc import aio

    from kserve.protocol.grpc import server as grpc_server
    from kserve.protocol.rest import server as rest_server

    class LoopbackConfig(uvicorn.Config):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, "host": "127.0.0.1"})

    def loopback_server(*args, **kwargs):
        server = aio.server(*args, **kwargs)
        listen = server.add_insecure_port
        server.add_insecure_port = lambda address: listen(address.replace("[::]", "127.0.0.1"))
        return server

    rest_server.uvicorn = types.SimpleNamespace(Config=LoopbackConfig)  # its only use of uvicorn after import
    grpc_server.aio = types.SimpleNamespace(server=loopback_server)  # its only use of grpc.aio


def serve(config):
    import numpy as np

    import kserve
    from kserve import InferOutput, InferRequest, InferResponse
    from kserve.errors import InferenceError, InvalidInput
    from kserve.utils.utils import generate_uuid

    weights = np.array(WEIGHTS, np.float32)
    calls = itertools.count(1)

    def frames(x):
        if x.ndim != 2 or x.shape[1] != 4 or x.dtype.kind not in "fiu":
            raise InvalidInput(f"expected numbers of shape [-1, 4]; got {x.dtype} {list(x.shape)}")
        return x.astype(np.float32)

    class KModel(kserve.Model):
        def load(self):
            self.ready = True
            return self.ready

        def get_input_types(self):
            return [{"name": INPUT, "datatype": "FP32", "shape": [-1, 4]}]

        def get_output_types(self):
            return [{"name": OUTPUT, "datatype": "FP32", "shape": [-1, 3]}]

        async def predict(self, payload, headers=None):
            """v1 REST gives a dict ({"instances": [...]}), v2 REST and gRPC an InferRequest."""
            call = next(calls)
            if config["delay_ms"] > 0:
                await asyncio.sleep(config["delay_ms"] / 1000)
            if config["fail_every"] > 0 and call % config["fail_every"] == 0:
                raise InferenceError(f"injected failure: call {call} (every {config['fail_every']}th fails)")
            if isinstance(payload, InferRequest):
                x = frames(payload.inputs[0].as_numpy())
                output = InferOutput(name=OUTPUT, shape=[x.shape[0], 3], datatype="FP32")
                # as KServe's own servers do: InferOutput(data=ndarray) makes to_grpc() fail ("truth value of an
                # array ... is ambiguous", gRPC INTERNAL) when the request came with raw_input_contents
                output.set_data_from_numpy(x @ weights, binary_data=payload.use_binary_outputs)
                # a request without "id" must still be answered with one: KServe's REST v2 answer (pydantic
                # InferenceResponse) refuses id None with HTTP 500, as its own model servers avoid the same way
                return InferResponse(response_id=payload.id or generate_uuid(), model_name=self.name,
                                     infer_outputs=[output], use_binary_outputs=payload.use_binary_outputs,
                                     requested_outputs=payload.request_outputs)
            if not isinstance(payload, dict) or not isinstance(payload.get("instances"), list):
                raise InvalidInput('expected a JSON body {"instances": [[4 numbers], ...]} (TF Serving\'s row format, '
                                   f"Content-Type: application/json); got {type(payload).__name__}: {str(payload)[:80]}")
            x = frames(np.asarray(payload["instances"]))
            return {"predictions": (x @ weights).tolist()}

    _bind_loopback()
    model = KModel(config["name"])
    model.load()
    kserve.ModelServer(http_port=config["http_port"], grpc_port=config["grpc_port"], enable_grpc=True,
                       workers=1).start([model])


if __name__ == "__main__":
    settings = json.loads(sys.argv[1])
    sys.argv = sys.argv[:1]  # kserve.model_server parses sys.argv at import (parse_known_args): give it none
    serve(settings)

"""The demo server's REST port: TF Serving's REST API and the Open Inference Protocol's, beside its gRPC port.

``DemoServer(rest_port=0)`` (``--rest-port PORT``) serves on threads (one per connection, HTTP/1.1
keep-alive, TLS as its gRPC port has it):

- ``GET /v1/models/NAME[/versions/N]`` (status), ``GET .../metadata`` (signature_def),
  ``POST /v1/models/NAME[/versions/N|/labels/L]:predict``;
- ``GET /v2``, ``/v2/health/live``, ``/v2/health/ready``, ``GET /v2/models/NAME[/versions/N]`` (metadata),
  ``.../ready``, ``POST .../infer`` with JSON or binary tensors (``binary_tensor_data``, listed by ``GET /v2``),
  and Triton's ``GET .../config`` (what perf_analyzer ``-i http`` reads first).

Inference calls become the gRPC requests they stand for (``tfs_user.demo.rest_messages``) and go through
``DemoServer.serve_inference``: the same model, delays, failures, counts, recording and metrics as gRPC.
Errors answer ``{"error": "..."}`` with the HTTP status of the gRPC code (NOT_FOUND 404, INVALID_ARGUMENT 400, ...).
"""

import json
import os
import re
import ssl
import tempfile
import threading
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc

from tfs_user.demo import handlers, kserve_handlers, rest_messages
from tfs_user.demo.inference import Abort
from tfs_user.protocols.kserve.messages import pb2
from tfs_user.protocols.tfs.messages import get_model_metadata_pb2, get_model_status_pb2

HTTP_STATUS = {"INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "OUT_OF_RANGE": 400, "UNAUTHENTICATED": 401,
               "PERMISSION_DENIED": 403, "NOT_FOUND": 404, "ALREADY_EXISTS": 409, "ABORTED": 409,
               "RESOURCE_EXHAUSTED": 429, "CANCELLED": 499, "UNIMPLEMENTED": 501, "UNAVAILABLE": 503,
               "DEADLINE_EXCEEDED": 504}
"""gRPC status code name -> HTTP status (as grpc-gateway maps them); anything else is 500."""
_V1 = re.compile(r"^/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?(:predict|/metadata)?$")
_V2 = re.compile(r"^/v2/models/([^/]+)(?:/versions/([^/]+))?(/ready|/infer|/config)?$")


class _Context:
    """``serve_inference``'s view of an HTTP request: headers as metadata, the peer, ``abort`` raising Abort."""

    def __init__(self, headers, peer):
        self._metadata = tuple((k.lower(), v) for k, v in headers.items())
        self._peer = peer

    def invocation_metadata(self):
        return self._metadata

    def peer(self):
        return self._peer

    def is_active(self):
        return True  # HTTP carries no deadline to the server; a client that gave up is not seen here

    def time_remaining(self):
        return None

    def abort(self, code, details):
        raise Abort(code, details)


class _Predict:
    """``serve_inference``'s protocol for a ``:predict`` call: TF Serving's handlers."""

    receipt = staticmethod(handlers.receipt)
    model_name = staticmethod(handlers.model_name)
    predict = staticmethod(handlers.predict)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: one connection per client
    disable_nagle_algorithm = True
    owner = None

    def log_message(self, *args):  # no line per request
        pass

    def _send(self, status, body, headers=()):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/json")
        for key, value in headers:
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _answer(self, work):
        try:
            status, body, headers = 200, *work()
        except Abort as e:
            code = getattr(e.code, "name", str(e.code))
            status, body, headers = HTTP_STATUS.get(code, 500), json.dumps({"error": e.details}).encode(), ()
        self._send(status, body, headers)

    def do_GET(self):
        self._answer(lambda: (json.dumps(self._get(self.path.split("?")[0])).encode(), ()))

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        self._answer(lambda: self._post(self.path.split("?")[0], body))

    # --- routes

    def _unless_metadata(self):
        if not self.owner.metadata:
            raise Abort(grpc.StatusCode.UNIMPLEMENTED, "Method not implemented!")

    def _get(self, path):
        owner = self.owner
        if path == "/v2":
            return {"name": kserve_handlers.PLATFORM, "version": "1", "extensions": ["binary_tensor_data"]}
        if path in ("/v2/health/live", "/v2/health/ready"):
            self._unless_metadata()
            return {"live": True} if path.endswith("live") else {"ready": not owner.loading()}
        v1, v2 = _V1.match(path), _V2.match(path)
        if v1 and v1[4] != ":predict":
            return self._v1_info(*v1.groups())
        if v2 and v2[3] != "/infer":
            name, version, what = v2.groups()
            if what == "/config":
                return rest_messages.triton_config(owner.models, name)
            if what == "/ready":
                owner.note_call(owner.status_times)
                self._unless_metadata()
                return rest_messages.to_dict(kserve_handlers.ready(
                    owner.models, pb2.ModelReadyRequest(name=name, version=version or ""), loading=owner.loading()))
            owner.note_call(owner.metadata_times)
            self._unless_metadata()
            if owner.metadata_code is not None:
                raise Abort(owner.metadata_code, "injected metadata failure")
            owner.check_loaded(name)
            return rest_messages.to_dict(kserve_handlers.metadata(
                owner.models, pb2.ModelMetadataRequest(name=name, version=version or "")))
        raise Abort(grpc.StatusCode.NOT_FOUND, f"no route for GET {path}")

    def _v1_info(self, name, version, label, what):
        owner = self.owner
        if what == "/metadata":
            owner.note_call(owner.metadata_times)
            self._unless_metadata()
            if owner.metadata_code is not None:
                raise Abort(owner.metadata_code, "injected metadata failure")
            request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        else:
            owner.note_call(owner.status_times)
            self._unless_metadata()
            request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = name
        if version:
            request.model_spec.version.value = int(version)
        elif label:
            request.model_spec.version_label = label
        if what == "/metadata":
            owner.check_loaded(name)
            return rest_messages.to_dict(handlers.metadata(owner.models, request))
        return rest_messages.to_dict(handlers.status(owner.models, request, loading=owner.loading()))

    def _post(self, path, body):
        owner, context = self.owner, _Context(self.headers, f"ipv4:{self.client_address[0]}:{self.client_address[1]}")
        v1, v2 = _V1.match(path), _V2.match(path)
        if v1 and v1[4] == ":predict":
            name, version, label, _ = v1.groups()
            request = rest_messages.predict_request(owner.models.get(name), name, int(version or 0), label, body)
            return rest_messages.predict_answer(owner.serve_inference(request, context, _Predict)), ()
        if v2 and v2[3] == "/infer":
            name, version, _ = v2.groups()
            length = self.headers.get(rest_messages.HEADER_LENGTH)
            request, binary = rest_messages.infer_request(name, version or "", body, int(length) if length else None)
            from tfs_user.demo.kserve_service import _Protocol

            response = owner.serve_inference(request, context, _Protocol(owner.kserve_typed_outputs))
            data, header_length = rest_messages.infer_answer(response, binary)
            extra = () if header_length is None else (("Inference-Header-Content-Length", str(header_length)),)
            return data, extra
        raise Abort(grpc.StatusCode.NOT_FOUND, f"no route for POST {path}")


def _tls_context(tls):
    """A server TLS context from DemoServer's ``tls`` (certificate, key, client CA PEM bytes or None)."""
    cert, key, client_ca = tls
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as folder:  # load_cert_chain reads files only
        paths = []
        for name, data in (("cert.pem", cert), ("key.pem", key)):
            paths.append(os.path.join(folder, name))
            with open(paths[-1], "wb") as f:
                f.write(data)
        context.load_cert_chain(*paths)
    if client_ca is not None:
        context.load_verify_locations(cadata=client_ca.decode())
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """A client that resets or drops its connection (perf_analyzer at its end, a test's reset) is not an error
        of this server: no traceback for those; anything else as the standard library reports it."""
        if not isinstance(sys.exc_info()[1], (ConnectionError, ssl.SSLError, TimeoutError)):
            super().handle_error(request, client_address)


class RestServer:
    """The REST port of DemoServer ``owner`` on ``host``/``port`` (0 = any free port): ``start()`` -> bound port."""

    def __init__(self, owner, host, port):
        handler = type("DemoRestHandler", (_Handler,), {"owner": owner})
        self._server = _Server((host.strip("[]"), port), handler)
        if owner.tls:
            context = _tls_context(owner.tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self._server.serve_forever, name="demo-rest", daemon=True)
        self._thread.start()
        return self.port

    def stop(self):
        self._server.shutdown()
        self._server.server_close()

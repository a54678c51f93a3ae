"""What a call's outcome means, whatever the protocol: gRPC failures by kind, and answers that are wrong.

``RpcFailure`` and ``BadResponse`` are the exceptions a user stores in its Locust request
event (never raised). Imports neither gRPC nor Locust: status codes are compared by name.
"""

import re

_TOO_LARGE = re.compile(r"larger than max \((\d+) vs\. (\d+)\)")
_GOAWAY = re.compile(r"goaway|too.many.pings|enhance.your.calm", re.IGNORECASE)
GOAWAY_DETAILS = ("the server closed the connection with HTTP/2 GOAWAY{why}; the user reconnects. "
                  "If this repeats, check --grpc-option keepalive settings against the server's keepalive policy")
"""Details of a failure caused by a server's GOAWAY: one stable text, so Locust's failure table shows one row."""


class RpcFailure(Exception):
    """A call (Predict, ModelInfer, ...) that ended with a gRPC status other than OK.

    ``code`` is the ``grpc.StatusCode``, ``details`` the server's message. Its
    repr, which Locust uses as the key of its failure table, reads
    ``NOT_FOUND: Servable not found ...``; with several endpoints it ends with
    ``(endpoint HOST:PORT)``.
    """

    def __init__(self, code, details, endpoint=""):
        super().__init__(code, details)
        self.code = code
        self.details = details or ""
        self.endpoint = endpoint

    @classmethod
    def from_rpc_error(cls, error, endpoint=""):
        """The RpcFailure of a ``grpc.RpcError`` at ``endpoint`` ("" when there is one endpoint).

        A message-size error names --max-message-mb; a connection the server closed with GOAWAY
        (e.g. ``too_many_pings``) gets GOAWAY_DETAILS, one text whatever gRPC's wording.
        """
        code, details = error.code(), error.details() or ""
        too_large = _TOO_LARGE.search(details) if getattr(code, "name", "") == "RESOURCE_EXHAUSTED" else None
        if too_large:
            details = f"got {too_large[1]} bytes, limit {too_large[2]} (raise --max-message-mb)"
        elif _GOAWAY.search(details) or _GOAWAY.search(_debug_text(error)):
            pings = "too_many_pings" in (details + _debug_text(error)).lower().replace(" ", "_")
            details = GOAWAY_DETAILS.format(why=" too_many_pings (keepalive pings too frequent for it)" if pings else "")
        return cls(code, details, endpoint)

    def __str__(self):
        name = self.code.name if self.code is not None else "UNKNOWN"
        text = f"{name}: {self.details}" if self.details else name
        return f"{text} (endpoint {self.endpoint})" if self.endpoint else text

    __repr__ = __str__


def _debug_text(error):
    """gRPC's debug string of ``error`` ("" when it has none)."""
    try:
        return error.debug_error_string() or ""
    except Exception:  # not every RpcError has one
        return ""


class BadResponse(Exception):
    """A call that returned OK but not what was asked (no outputs, wrong batch dimension)."""

    __repr__ = Exception.__str__


def bad_response(problem, endpoint=""):
    """None when ``problem`` is None, else the BadResponse saying it (naming ``endpoint`` when there are several)."""
    if problem is None:
        return None
    return BadResponse(f"{problem} (endpoint {endpoint})" if endpoint else problem)

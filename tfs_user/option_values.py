"""Option text to values: ``--host``, booleans, shapes, KEY=VALUE lists; ``OptionError`` for bad text.

Plain functions without gRPC or Locust; each error is one line naming the option, the value and
what was expected.
"""

import argparse
import base64
import binascii
import json
import re

from tfs_user.transport.target import TargetError, parse_targets, resolve_host


DEMO_METRICS = "demo"
"""``--server-metrics demo``: the metrics page of the demo server ``--demo-server`` started."""


class OptionError(ValueError):
    """An option value that cannot be used; one line naming the value and what was expected."""


def resolve_target(host, grpc_address="", grpc_port=0):
    """The gRPC target from ``--host`` (first), else ``--grpc-address``/``--grpc-port``, else localhost:9000.

    Raises OptionError for a host that is not ``[grpc://|grpcs://]HOST[:PORT]``.
    """
    try:
        return ",".join(parse_targets(resolve_host(host or "", grpc_address, grpc_port)))
    except TargetError as e:
        raise OptionError(str(e)) from None


def parse_bool(text):
    """'true'/'1'/'yes'/'on' -> True, 'false'/'0'/'no'/'off' -> False (bools pass); ArgumentTypeError otherwise."""
    if isinstance(text, bool):
        return text
    value = str(text).strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not a boolean; expected true or false")


def parse_shape(text, option="--synthetic-shape"):
    """'224,224,3' -> (224, 224, 3); raises OptionError unless all dims are integers >= 1."""
    try:
        shape = tuple(int(d) for d in text.replace(" ", "").split(","))
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise OptionError(f"{option} {text!r} is not a shape; expected dims >= 1 separated by commas, e.g. 224,224,3")
    return shape


METADATA_KEY = re.compile(r"[0-9a-z_.-]+")
"""The characters of a gRPC metadata key (after lower-casing)."""


def parse_metadata(text):
    """'k1=v1,k2=v2' -> (('k1', 'v1'), ('k2', 'v2')); keys lower-case as gRPC requires.

    A key ending in ``-bin`` (gRPC binary metadata) takes its value as base64 text and carries the decoded
    ``bytes`` (gRPC sends them base64-encoded on the wire again); other values must be printable ASCII.
    Raises OptionError naming the entry's position and key (never its value) when it has no '=', an empty
    key or one with characters gRPC refuses, a ``-bin`` value that is not base64, or a value gRPC cannot carry.
    """
    pairs = []
    for number, item in enumerate(filter(None, (part.strip() for part in text.split(","))), 1):
        key, sep, value = item.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep or not key:  # the entry itself may hold a secret: not printed
            raise OptionError(f"--grpc-metadata entry {number} is not KEY=VALUE")
        if not METADATA_KEY.fullmatch(key) or key.startswith("grpc-"):
            raise OptionError(f"--grpc-metadata entry {number} has key {key!r}; expected letters, digits, '-', '_' "
                              "and '.', not starting with 'grpc-' (gRPC's own)")
        if key.endswith("-bin"):
            try:
                value = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise OptionError(f"--grpc-metadata entry {number} ({key}) is not base64; a -bin key carries bytes, "
                                  "given as base64 text, e.g. trace-bin=AAEC") from None
        elif not all(" " <= c <= "~" for c in value):
            raise OptionError(f"--grpc-metadata entry {number} ({key}) has characters gRPC metadata cannot carry; "
                              "expected printable ASCII, or a key ending in -bin with the bytes in base64")
        pairs.append((key, value))
    return tuple(pairs)


def parse_names(text, option="--output-names"):
    """'a,b' -> ('a', 'b') (blanks dropped, order kept); OptionError for a name given twice."""
    names = tuple(filter(None, (part.strip() for part in text.split(","))))
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise OptionError(f"{option} names {twice[0]!r} twice; expected each name once")
    return names


def parse_metric_urls(text):
    """'http://a:8002/metrics,http://b:8002/metrics' -> (url, ...) (``--server-metrics``, blanks dropped, order kept).

    ``demo`` stands for the page of the demo server that ``--demo-server`` starts. Raises OptionError for
    an entry that is not ``demo`` or an http:// or https:// URL with a host, or a URL given twice.
    """
    urls = parse_names(text, option="--server-metrics")
    for url in urls:
        if url == DEMO_METRICS:
            continue
        scheme, sep, rest = url.partition("://")
        if not sep or scheme.lower() not in ("http", "https") or not rest.split("/")[0]:
            raise OptionError(f"--server-metrics {url!r} is not an http:// or https:// URL; expected the server's "
                              f"Prometheus page, e.g. http://127.0.0.1:8002/metrics (or {DEMO_METRICS} with --demo-server)")
    return urls


def parse_named_inputs(text):
    """'a=x.npy,b=y.npy' -> (('a', 'x.npy'), ('b', 'y.npy')); OptionError for an entry without NAME=FILE."""
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise OptionError(f"--input {item!r} is not NAME=FILE.npy")
        pairs.append((name.strip(), path.strip()))
    return tuple(pairs)


def parse_grpc_options(text):
    """'grpc.keepalive_time_ms=30000,grpc.lb_policy_name=round_robin' -> (('grpc.keepalive_time_ms', 30000),
    ('grpc.lb_policy_name', 'round_robin')): integer values become int (gRPC wants integer channel
    arguments typed), others stay str. A value may be JSON (``grpc.service_config={"methodConfig": [...]}``):
    entries are split only at commas outside braces, brackets and quotes, and a value starting with
    ``{`` or ``[`` must parse as JSON; it is passed on as its text. Raises OptionError for an entry without
    KEY=VALUE, a key with spaces or JSON that does not parse.
    """
    pairs = []
    for item in filter(None, (part.strip() for part in _top_level_split(text))):
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not key or " " in key or not value:
            raise OptionError(f"--grpc-option {item!r} is not KEY=VALUE; expected e.g. grpc.keepalive_time_ms=30000")
        if value[0] in "{[":
            try:
                json.loads(value)
            except ValueError as e:
                raise OptionError(f"--grpc-option {key} has a value that is not valid JSON ({e}); expected e.g. "
                                  """grpc.service_config='{"loadBalancingConfig": [{"round_robin": {}}]}'""") from None
        else:
            try:
                value = int(value)
            except ValueError:
                pass
        pairs.append((key, value))
    return tuple(pairs)


def _top_level_split(text):
    """``text`` split at the commas outside JSON braces, brackets and double-quoted strings."""
    parts, depth, quoted, escaped, start = [], 0, False, False, 0
    for i, c in enumerate(text):
        if quoted:
            escaped, quoted = (not escaped and c == "\\"), quoted and (escaped or c != '"')
        elif c == '"':
            quoted = True
        elif c in "{[":
            depth += 1
        elif c in "}]":
            depth -= 1
        elif c == "," and depth <= 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts

"""Options on a real configargparse parser (the class Locust's parser derives from), targets, Settings.

Locust itself is not imported in this process: its gevent monkey-patching, once
ssl is imported (by grpc, in conftest), breaks the pytest process; one test runs
Locust's own parser in a subprocess.
"""

import argparse
import json
import os
import subprocess
import sys

import configargparse
import pytest

from tfs_user.transport.target import TargetError, parse_target, parse_targets
from tfs_user.options import OPTIONS, add_options
from tfs_user.option_values import OptionError, parse_shape, resolve_target
from tfs_user.settings import Settings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# --- parse_target / resolve_target ------------------------------------------------


@pytest.mark.parametrize("host, target", [
    ("h:1", "h:1"),
    ("grpc://h:1", "h:1"),
    ("h", "h:9000"),
    ("grpc://h", "h:9000"),
    ("[::1]:9", "[::1]:9"),
    ("[::1]", "[::1]:9000"),
    ("grpc://h:1/", "h:1"),
    ("  10.0.0.2:8500  ", "10.0.0.2:8500"),
    ("h:65535", "h:65535"),
    ("http://h:8501", "h:8501"),  # the scheme picks HTTP (Settings.http), the target stays HOST:PORT
    ("https://h", "h:443"),
    ("http://h/", "h:80"),
    ("h:8500/", "h:8500"),  # a trailing slash is no path
    ("https://h:8501//", "h:8501"),
])
def test_parse_target_accepts(host, target):
    assert parse_target(host) == target


@pytest.mark.parametrize("host, words", [
    ("ftp://h:1", "'ftp'"),
    ("h:0", "'0'"),
    ("h:70000", "'70000'"),
    ("h:x", "'x'"),
    ("", "HOST:PORT"),
    ("grpc://", "HOST:PORT"),
    ("h:-1", "'-1'"),
    ("[::1]:abc", "'abc'"),
    ("[::1]x", "has 'x' after the IPv6 address; expected [ADDRESS]:PORT"),
    ("http://h:p", "port 'p'"),
])
def test_parse_target_rejects_naming_value(host, words):
    with pytest.raises(TargetError) as info:
        parse_target(host)
    message = str(info.value)
    assert repr(host) in message and words in message
    assert "\n" not in message


REST_PATHS = ("the tool adds the REST paths itself (/v1/models/NAME:predict for --protocol tfs, /v2/models/NAME/infer "
              "for kserve; NAME = --model-name")
GRPC_NAMES = "gRPC names the service and the model (--model-name"


@pytest.mark.parametrize("host, path, address, where", [
    # a URL pasted whole: the path is named, not read as part of the port (seen: "has port '8501/v1'")
    ("http://h:8501/v1", "a path '/v1'", "http://h:8501", REST_PATHS + ")"),
    ("http://h:p/v1", "a path '/v1'", "http://h:p", REST_PATHS + ")"),
    ("https://h/v2/models/m/infer", "a path '/v2/models/m/infer'", "https://h", REST_PATHS + ", here m)"),
    ("http://127.0.0.1:8501/v1/models/resnet:predict", "a path '/v1/models/resnet:predict'", "http://127.0.0.1:8501",
     REST_PATHS + ", here resnet)"),
    ("http://[::1]:8501/v2", "a path '/v2'", "http://[::1]:8501", REST_PATHS + ")"),
    ("http://h:8501?x=1", "'?x=1' after its address", "http://h:8501", REST_PATHS + ")"),
    ("h:8500/x", "a path '/x'", "h:8500", GRPC_NAMES + ") in each call, not in the address"),
    ("grpc://h:8500/models/x", "a path '/models/x'", "grpc://h:8500", GRPC_NAMES + ", here x) in each call"),
    ("[::1]:8500/x", "a path '/x'", "[::1]:8500", GRPC_NAMES),
    ("dns:///h:8500/x", "a path '/x'", "dns:///h:8500", GRPC_NAMES),
    ("http://a:8501,http://b:8501/v1", "a path '/v1'", "http://b:8501", REST_PATHS),
])
def test_a_host_with_a_path_names_the_path_and_the_address_to_give(host, path, address, where):
    with pytest.raises(TargetError) as info:
        parse_targets(host)
    message = str(info.value)
    entry = host.split(",")[-1]
    assert message.startswith(f"host {entry!r} has {path}; expected the server's address alone, --host {address}: ")
    assert where in message and "\n" not in message and "port" not in message.split(";")[0], message


def test_resolve_target_precedence():
    assert resolve_target("h:1", "other", 5) == "h:1"  # --host beats the old options
    assert resolve_target("h:1") == "h:1"
    assert resolve_target("", "srv", 8500) == "srv:8500"
    assert resolve_target("", "srv", 0) == "srv:9000"
    assert resolve_target("", "", 8500) == "localhost:8500"
    assert resolve_target("", "", 0) == "localhost:9000"
    assert resolve_target(None) == "localhost:9000"


@pytest.mark.parametrize("args", [("ftp://h:1",), ("", "srv", 70000), ("h:0", "srv", 5)])
def test_resolve_target_errors_are_option_errors(args):
    with pytest.raises(OptionError):
        resolve_target(*args)
    assert issubclass(OptionError, ValueError)


# --- the options on Locust's parser -------------------------------------------------


@pytest.fixture
def parser(monkeypatch):
    """A configargparse parser (no config files) with our options; TFS_* variables cleared."""
    for name in [n for n, *_ in _env_names()]:
        monkeypatch.delenv(name, raising=False)
    p = configargparse.ArgumentParser(prog="locust", default_config_files=[])
    add_options(p)
    return p


def _env_names():
    return [("TFS_" + flags[0].lstrip("-").replace("-", "_").upper(), flags) for flags, _ in OPTIONS]


def test_every_option_has_a_default_and_help_with_default():
    for flags, kwargs in OPTIONS:
        assert flags[0].startswith("--") and "_" not in flags[0], flags
        assert kwargs["default"] is not None, flags
        assert "Default" in kwargs["help"] or kwargs.get("action") == "store_true", flags


def test_defaults(parser):
    o = parser.parse_args([])
    assert (o.batch_size, o.model_name, o.signature_name, o.input_name) == ("1", "resnet", "serving_default", "")
    assert (o.dtype, o.layout, o.validate_outputs, o.max_message_mb, o.grpc_metadata) == ("", "auto", True, 256, "")
    assert (o.tfs_iterations, o.warmup_iterations, o.report_every) == (-1, 1, 0)
    assert (o.timeout, o.grpc_address, o.grpc_port, o.request_cache_mb) == (10.0, "", 0, 512)
    assert (o.slo_p99_ms, o.slo_min_fps, o.slo_max_fail_ratio) == (0.0, 0.0, 1.0)
    assert o.images_numpy_path == "" and o.synthetic_shape == "" and o.demo_server is False


@pytest.mark.parametrize("flag", ["--batch-size", "--batchsize", "--batch_size"])
def test_batch_size_aliases(parser, flag):
    assert parser.parse_args([flag, "8"]).batch_size == "8"  # text: a mix is SIZE:WEIGHT,...


def test_old_script_spellings(parser):
    o = parser.parse_args(["--images_numpy_path", "imgs.npy", "--grpc_port", "8500", "--grpc_address", "srv",
                           "--model_name", "m", "--model_version", "3", "--signature_name", "s",
                           "--input_name", "in", "--report_every", "10"])
    assert (o.images_numpy_path, o.grpc_port, o.grpc_address) == ("imgs.npy", 8500, "srv")
    assert (o.model_name, o.model_version, o.signature_name, o.input_name, o.report_every) == ("m", 3, "s", "in", 10)


def test_typed_values(parser):
    o = parser.parse_args(["--timeout", "0.5", "--slo-max-fail-ratio", "0.25", "--slo-p99-ms", "12.5",
                           "--slo-min-fps", "100", "--iterations", "0", "--warmup-iterations", "0",
                           "--status-interval", "0", "--request-cache-mb", "0", "--demo-server"])
    assert (o.timeout, o.slo_max_fail_ratio, o.slo_p99_ms, o.slo_min_fps) == (0.5, 0.25, 12.5, 100.0)
    assert (o.tfs_iterations, o.warmup_iterations, o.status_interval, o.request_cache_mb) == (0, 0, 0.0, 0)
    assert o.demo_server is True


def test_env_vars(parser, monkeypatch):
    monkeypatch.setenv("TFS_BATCH_SIZE", "16")
    monkeypatch.setenv("TFS_SLO_P99_MS", "40")
    monkeypatch.setenv("TFS_IMAGES_NUMPY_PATH", "/data/x.npy")
    o = parser.parse_args([])
    assert (o.batch_size, o.slo_p99_ms, o.images_numpy_path) == ("16", 40.0, "/data/x.npy")
    assert parser.parse_args(["--batchsize", "2"]).batch_size == "2"  # command line beats env


def test_env_var_value_is_validated(parser, monkeypatch, capsys):
    monkeypatch.setenv("TFS_BATCH_SIZE", "0")
    with pytest.raises(SystemExit) as info:
        parser.parse_args([])
    assert info.value.code == 2
    assert "'0'" in capsys.readouterr().err


@pytest.mark.parametrize("args, quoted", [
    (["--batch-size", "0"], "'0'"),
    (["--batchsize", "-3"], "'-3'"),
    (["--batch_size", "x"], "'x'"),
    (["--batch-size", "2.5"], "'2.5'"),
    (["--timeout", "0"], "'0'"),
    (["--timeout", "-1"], "'-1'"),
    (["--timeout", "nan"], "'nan'"),
    (["--timeout", "soon"], "'soon'"),
    (["--slo-max-fail-ratio", "1.5"], "'1.5'"),
    (["--slo-max-fail-ratio", "-0.1"], "'-0.1'"),
    (["--slo-p99-ms", "-5"], "'-5'"),
    (["--slo-min-fps", "fast"], "'fast'"),
    (["--iterations", "-2"], "'-2'"),
    (["--warmup-iterations", "-1"], "'-1'"),
    (["--model-version", "-1"], "'-1'"),
    (["--report-every", "-1"], "'-1'"),
    (["--grpc-port", "-1"], "'-1'"),
    (["--grpc-port", "70000"], "'70000'"),
    (["--request-cache-mb", "-1"], "'-1'"),
    (["--status-interval", "-1"], "'-1'"),
])
def test_bad_values_exit_2_quoting_value(parser, capsys, args, quoted):
    with pytest.raises(SystemExit) as info:
        parser.parse_args(args)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert quoted in err and args[0] in err


@pytest.mark.parametrize("flags, good, bad", [
    (("--batch-size",), [("1", "1"), ("64", "64"), ("1:6,8:3,32:1", "1:6,8:3,32:1")],
     ["0", "-3", "x", "", "1:0", "8:-1", "8:x", "1:1,1:2"]),
    (("--images-numpy-path",), [("a.npy", "a.npy"), ("a.npy:2,b.npy", "a.npy:2,b.npy")], ["a.npy:0", "a.npy,a.npy"]),
    (("--iterations",), [("-1", -1), ("0", 0), ("5", 5)], ["-2", "1.0"]),
    (("--timeout",), [("0.001", 0.001), ("10", 10.0)], ["0", "0.0", "-1", "nan"]),
    (("--slo-max-fail-ratio",), [("0", 0.0), ("1", 1.0), ("0.5", 0.5)], ["1.5", "-0.1", "nan", "x"]),
    (("--status-interval",), [("0", 0.0), ("2.5", 2.5)], ["-0.5"]),
])
def test_validators_directly(flags, good, bad):
    kwargs = next(kw for f, kw in OPTIONS if f[0] == flags[0])
    convert = kwargs["type"]
    for text, value in good:
        assert convert(text) == value and type(convert(text)) is type(value)
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError, match=repr(text).replace(".", r"\.")):
            convert(text)


# --- parse_shape ------------------------------------------------------------------


@pytest.mark.parametrize("text, shape", [("224,224,3", (224, 224, 3)), (" 3, 8 ,8 ", (3, 8, 8)), ("5", (5,))])
def test_parse_shape_good(text, shape):
    assert parse_shape(text) == shape


@pytest.mark.parametrize("text", ["", "0,2", "-1,3", "a,b", "3,", "2.5,2", ","])
def test_parse_shape_bad(text):
    with pytest.raises(OptionError) as info:
        parse_shape(text)
    assert repr(text) in str(info.value) and "--synthetic-shape" in str(info.value)


# --- Settings ---------------------------------------------------------------------


@pytest.mark.parametrize("field, value, words", [
    ("batch_size", 0, "batch size 0"),
    ("iterations", -2, "iterations -2"),
    ("warmup_iterations", -1, "warm-up iterations -1"),
    ("timeout_s", 0, "timeout 0"),
    ("timeout_s", -0.5, "timeout -0.5"),
    ("model_name", "", "model name is empty"),
    ("layout", "sideways", "layout 'sideways' is not known"),
    ("dtype", "complex64", r"^--dtype: dtype '<c8' \(complex64: complex numbers\) cannot be sent as a TensorProto; expected one of "),
    ("dtype", "<U1", r"^--dtype: dtype '<U1' \(str32: unicode strings\) cannot be sent as a TensorProto; expected "),
    ("dtype", "floaty", "is not a numpy dtype"),
    ("protocol", "rest", r"^--protocol 'rest' is not known; expected one of tfs, kserve$"),
    ("binary_data", "maybe", r"^--binary-data 'maybe' is not known; expected one of auto, on, off$"),
    ("binary_data", "on", r"^--binary-data on applies to --protocol kserve over http:// or https:// only"),
])
def test_settings_rejects(field, value, words):
    with pytest.raises(OptionError, match=words):
        Settings(**{field: value})


def test_the_scheme_picks_the_transport_and_what_it_cannot_carry_is_one_line():
    assert (Settings.for_host("http://h:8501").http, Settings.for_host("https://h:8501").tls) == (True, True)
    assert (Settings.for_host("grpcs://h:1").http, Settings.for_host("h:1").http) == (False, False)
    assert Settings.for_host("http://h:1", protocol="kserve", binary_data="on").binary_data == "on"
    with pytest.raises(OptionError, match=r"^--output-names has no counterpart in TF Serving's REST API"):
        Settings.for_host("http://h:1", output_names=("prob",))
    with pytest.raises(OptionError, match=r"mixes HTTP \(http://, https://\) and gRPC endpoints"):
        Settings.for_host("http://a:1,b:2")
    for fields in (dict(compression="gzip"), dict(grpc_options=(("grpc.keepalive_time_ms", 1),)), dict(max_message_mb=8)):
        Settings.for_host("h:1", **fields)  # they shape gRPC channels
        with pytest.raises(OptionError, match=r"^--grpc-compression, --grpc-option and --max-message-mb shape gRPC"):
            Settings.for_host("http://h:1", **fields)


@pytest.mark.parametrize("fields, words", [
    (dict(version_label="stable"), r"^--model-version-label 'stable' has no counterpart in the Open Inference Protocol"),
    (dict(signature_name="classify"), r"^--signature-name 'classify' has no counterpart in the Open Inference Protocol"),
    (dict(dtype="<U1"), r"^--dtype: dtype '<U1' has no Open Inference Protocol datatype; expected one of bool, uint8"),
    (dict(dtype="complex64"), r"^--dtype: dtype '<c8' has no Open Inference Protocol datatype"),
])
def test_kserve_refuses_what_modelinfer_cannot_carry(fields, words):
    if "dtype" not in fields:
        Settings(protocol="tfs", **fields)  # TF Serving's ModelSpec carries them
    with pytest.raises(OptionError, match=words):
        Settings(protocol="kserve", **fields)


def test_protocol_and_output_names_reach_the_settings(parser):
    s = Settings.from_options(parser.parse_args(["--protocol", "kserve", "--output-names", "prob, logits"]))
    assert (s.protocol, s.output_names) == ("kserve", ("prob", "logits"))
    assert Settings.from_options(parser.parse_args([])).protocol == "tfs"
    with pytest.raises(SystemExit):
        parser.parse_args(["--protocol", "rest"])
    with pytest.raises(SystemExit):
        parser.parse_args(["--output-names", "prob,prob"])


def test_settings_defaults_valid_and_frozen():
    s = Settings()
    assert s.target == "localhost:9000" and s.synthetic_shape == () and s.batch_size == 1
    with pytest.raises(Exception):
        s.batch_size = 2


def test_settings_from_options(parser):
    o = parser.parse_args(["--batchsize", "4", "--grpc_address", "srv", "--grpc_port", "8500",
                           "--model-version", "2", "--model-version-label", "stable", "--synthetic-shape", "8,8,3",
                           "--timeout", "2.5", "--iterations", "0", "--request-cache-mb", "64"])
    s = Settings.from_options(o)
    assert s.target == "srv:8500"
    assert (s.batch_size, s.model_version, s.version_label, s.synthetic_shape) == (4, 2, "stable", (8, 8, 3))
    assert (s.timeout_s, s.iterations, s.request_cache_mb) == (2.5, 0, 64)
    assert Settings.from_options(o, host="grpc://other:1").target == "other:1"


@pytest.mark.parametrize("args, host", [
    (["--synthetic-shape", "8,x"], None),
    ([], "ftp://h:1"),
])
def test_settings_from_options_errors(parser, args, host):
    with pytest.raises(OptionError):
        Settings.from_options(parser.parse_args(args), host=host)


def test_options_on_locusts_own_parser():
    """Locust's real parser, in a subprocess (Locust monkey-patches the process it is imported in)."""
    code = (
        "import json\n"
        "from locust.argument_parser import get_parser\n"
        "from tfs_user.options import add_options\n"
        "p = get_parser(default_config_files=[])\n"
        "add_options(p)\n"
        "o = p.parse_args(['--batchsize', '4', '--images_numpy_path', 'a.npy', '--grpc_port', '8500', '-u', '2'])\n"
        "print(json.dumps([o.batch_size, o.images_numpy_path, o.grpc_port, o.slo_p99_ms, o.timeout, o.num_users]))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TFS_", "LOCUST_"))}
    env["TFS_SLO_P99_MS"] = "25"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == ["4", "a.npy", 8500, 25.0, 10.0, 2]


def test_iterations_yields_to_locust_plugins_when_it_owns_the_flag():
    """locust-plugins (imported by Locust first when installed) owns -i/--iterations."""
    import configargparse

    parser = configargparse.ArgumentParser()
    parser.add_argument("-i", "--iterations", type=int, default=0)  # as locust-plugins does
    add_options(parser)
    o = parser.parse_args(["--iterations", "7", "--tfs-iterations", "3"])
    assert (o.iterations, o.tfs_iterations) == (7, 3)


def test_grpc_metadata_is_repeatable_and_never_echoed(parser):
    o = parser.parse_args(["--grpc-metadata", "Authorization=Bearer s3cret", "--grpc-metadata", "team=a"])
    from tfs_user.option_values import parse_metadata

    assert parse_metadata(o.grpc_metadata) == (("authorization", "Bearer s3cret"), ("team", "a"))
    o = parser.parse_args(["--grpc-metadata", "team=a", "--metadata", "x-trace=1"])  # the transport-neutral name
    assert parse_metadata(o.grpc_metadata) == (("team", "a"), ("x-trace", "1"))
    with pytest.raises(OptionError) as info:
        parse_metadata("team=a,Bearer s3cret")
    assert "s3cret" not in str(info.value) and "entry 2" in str(info.value)


def test_tls_files_are_checked(tmp_path):
    with pytest.raises(OptionError, match="go together"):
        Settings(tls=True, tls_cert="c.pem")
    with pytest.raises(OptionError, match="cannot be read"):
        Settings(tls=True, tls_ca=str(tmp_path / "nope.pem"))
    with pytest.raises(OptionError, match="not grpcs://"):
        Settings(tls=False, tls_ca=str(tmp_path / "nope.pem"))


def test_secret_options_stay_masked_in_the_web_form():
    """Locust's start form shows is_secret fields as password fields: --grpc-metadata (tokens) and the TLS key."""
    code = (
        "import json\n"
        "from locust import events\n"
        "from locust.argument_parser import ui_extra_args_dict\n"
        "from tfs_user.options import add_options\n"
        "events.init_command_line_parser.add_listener(add_options)\n"
        "extra = ui_extra_args_dict([])\n"
        "print(json.dumps(sorted(k for k, v in extra.items() if v['is_secret'])))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TFS_", "LOCUST_"))}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == ["grpc_metadata", "grpc_tls_key"]

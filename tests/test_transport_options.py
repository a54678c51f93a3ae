"""Options that do what they say (issue 30): a broken CA file or a client key that is not its certificate's is
named with the file and why (it read "no gRPC server answered"); a ``-bin`` metadata key carries bytes (given
as base64; it ended in a traceback); ``--grpc-address ::1`` is bracketed; ``--grpc-option`` takes a JSON value
(``grpc.service_config``), and the old comma form still works.
"""

import json

import pytest

from test_preflight import _certificates
from tfs_user.demo.model import ModelConfig
from tfs_user.option_values import OptionError, parse_grpc_options, parse_metadata
from tfs_user.settings import Settings

TINY = ModelConfig(name="m", shape=(-1, 4), output_size=1)
RUN = ("-u", "1", "-r", "1", "--iterations", "2", "--warmup-iterations", "0", "--model-name", "m")


def _one_error(run):
    assert run.returncode == 2 and "Traceback" not in run.output, run.output
    errors = [line for line in run.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, run.output
    return errors[0]


@pytest.fixture
def pem_files(tmp_path):
    _certificates(tmp_path)
    (tmp_path / "broken_ca.pem").write_text("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n")
    (tmp_path / "notes.pem").write_text("just some text\n")
    (tmp_path / "broken.key").write_text("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    return tmp_path


def test_broken_tls_files_are_named_with_the_reason(pem_files):
    def error(**files):
        with pytest.raises(OptionError) as stopped:
            Settings.for_host("grpcs://h:1", **{k: str(pem_files / v) for k, v in files.items()})
        return str(stopped.value)

    for name in ("broken_ca.pem", "notes.pem"):
        assert error(tls_ca=name).startswith(f"--grpc-tls-ca '{pem_files / name}' holds no PEM certificate ssl can read")
    assert error(tls_ca="ca.pem", tls_cert="notes.pem", tls_key="client.key").startswith(
        f"--grpc-tls-cert '{pem_files / 'notes.pem'}' holds no PEM certificate")
    assert error(tls_ca="ca.pem", tls_cert="client.pem", tls_key="server.key") == (
        f"--grpc-tls-key '{pem_files / 'server.key'}' is not the private key of --grpc-tls-cert "
        f"'{pem_files / 'client.pem'}' (KEY_VALUES_MISMATCH); expected the key that certificate was made for")
    assert error(tls_ca="ca.pem", tls_cert="client.pem", tls_key="broken.key").startswith(
        f"--grpc-tls-key '{pem_files / 'broken.key'}' holds no private key ssl can read (")
    good = Settings.for_host("grpcs://h:1", tls_ca=str(pem_files / "ca.pem"), tls_cert=str(pem_files / "client.pem"),
                             tls_key=str(pem_files / "client.key"))
    assert good.tls_key.endswith("client.key")


def test_a_key_that_is_not_the_certificates_stops_a_real_run_naming_it(pem_files, demo_server, run_locust):
    pem = {name: (pem_files / name).read_bytes() for name in ("ca.pem", "server.pem", "server.key")}
    server = demo_server(models=[TINY], tls=(pem["server.pem"], pem["server.key"], pem["ca.pem"]))
    port = server.address.split(":")[1]
    run = run_locust("--host", f"grpcs://127.0.0.1:{port}", *RUN, "--grpc-tls-server-name", "tfs.test",
                     "--grpc-tls-ca", str(pem_files / "ca.pem"), "--grpc-tls-cert", str(pem_files / "client.pem"),
                     "--grpc-tls-key", str(pem_files / "server.key"))
    assert _one_error(run).startswith(f"error: --grpc-tls-key '{pem_files / 'server.key'}' is not the private key of "
                                      "--grpc-tls-cert")  # was: no gRPC server answered at ...
    assert server.counts()["requests"] == 0


def test_bin_metadata_goes_as_bytes_and_bad_base64_is_one_line(demo_server, run_locust):
    server = demo_server(models=[TINY])
    run = run_locust("--host", server.address, *RUN, "--grpc-metadata", "Trace-Bin=AAEC/w==,x-user=me")
    assert run.returncode == 0, run.output  # was: TypeError traceback, exit 1
    assert server.last_call_metadata.get("trace-bin") == b"\x00\x01\x02\xff"
    assert server.last_call_metadata.get("x-user") == "me"
    bad = run_locust("--host", server.address, *RUN, "--grpc-metadata", "x-user=me,trace-bin=n0t*base64")
    assert _one_error(bad) == ("error: --grpc-metadata entry 2 (trace-bin) is not base64; a -bin key carries bytes, "
                               "given as base64 text, e.g. trace-bin=AAEC")


def test_metadata_keys_and_values_gRPC_refuses_are_one_line_without_the_value():
    for text, says in (("a b=1", "has key 'a b'"), ("grpc-timeout=1", "has key 'grpc-timeout'"),
                       ("k=s3cr\u00e9t", "entry 1 (k) has characters gRPC metadata cannot carry")):
        with pytest.raises(OptionError) as stopped:
            parse_metadata(text)
        assert says in str(stopped.value) and "s3cr" not in str(stopped.value)
    assert parse_metadata("a=1,B-bin=") == (("a", "1"), ("b-bin", b""))


def test_an_ipv6_grpc_address_is_bracketed(demo_server, run_locust):
    server = demo_server(models=[TINY], host="::1")
    run = run_locust("--grpc-address", "::1", "--grpc-port", str(server.port), *RUN)
    assert run.returncode == 0, run.output  # was: host '::1:PORT' is ambiguous
    assert server.counts()["ok"] == 2
    assert Settings.from_options(_options(grpc_address="::1", grpc_port=8500)).target == "[::1]:8500"


def _options(**values):
    import configargparse

    from tfs_user.options import add_options

    parser = configargparse.ArgumentParser()
    add_options(parser)
    options = parser.parse_args([])
    vars(options).update(values)
    return options


SERVICE_CONFIG = {"methodConfig": [{"name": [{"service": "tensorflow.serving.PredictionService", "method": "Predict"}],
                                    "timeout": "0.05s"}]}


def test_grpc_option_takes_a_json_value_and_keeps_the_comma_form(demo_server, run_locust):
    text = f"grpc.service_config={json.dumps(SERVICE_CONFIG)},grpc.keepalive_time_ms=30000"
    assert parse_grpc_options(text) == (("grpc.service_config", json.dumps(SERVICE_CONFIG)),
                                        ("grpc.keepalive_time_ms", 30000))
    assert parse_grpc_options("grpc.keepalive_time_ms=30000, grpc.lb_policy_name=round_robin") == (
        ("grpc.keepalive_time_ms", 30000), ("grpc.lb_policy_name", "round_robin"))
    with pytest.raises(OptionError, match="grpc.service_config has a value that is not valid JSON"):
        parse_grpc_options('grpc.service_config={"methodConfig": [}')
    # the service config reaches gRPC: its 50 ms deadline for Predict fails every call to a 300 ms model
    server = demo_server(models=[TINY], delay_ms=300)
    run = run_locust("--host", server.address, *RUN, "--grpc-option", f"grpc.service_config={json.dumps(SERVICE_CONFIG)}",
                     "--grpc-option", "grpc.keepalive_time_ms=30000")
    assert run.returncode == 1 and "Traceback" not in run.output, run.output
    assert run.locust_csv()["Predict m"]["Failure Count"] == "2", run.output
    assert "DEADLINE_EXCEEDED" in "".join(row["Error"] for row in run.failures_csv())


def test_bin_metadata_goes_over_http_as_the_base64_text_given():
    from tfs_user.transport.config import header_pairs

    assert header_pairs(parse_metadata("trace-bin=AAEC/w==,x-user=me")) == (("trace-bin", "AAEC/w=="), ("x-user", "me"))

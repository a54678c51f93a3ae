"""Pre-flight, input fitting and transport: each case of the model-aware issue against the demo server."""

import re
import subprocess
import time

import numpy as np

from conftest import locust_command
from tfs_user.demo.server import DemoServer, ModelConfig

SMALL_NHWC = dict(name="small", shape=(-1, 8, 8, 3), output_size=10)


def _run(run_locust, server, *args, users=1, iterations=5):
    return run_locust("--host", server.address, "-u", str(users), "-r", str(users), "--iterations", str(iterations),
                      "--model-name", "small", *args)


def _save(tmp_path, name, array):
    path = tmp_path / name
    np.save(path, array)
    return str(path)


def test_float64_file_is_cast_to_the_models_float32(demo_server, run_locust, tmp_path):
    server = demo_server(models=[ModelConfig(**SMALL_NHWC)])
    path = _save(tmp_path, "f64.npy", np.ones((4, 8, 8, 3), np.float64))
    run = _run(run_locust, server, "--images-numpy-path", path)
    assert run.returncode == 0, run.output
    assert "notice: casting the file's float64 to float32 (input 'input' is DT_FLOAT)" in run.output
    assert run.tfs_csv()["Predict small"]["Failures"] == "0"


def test_nchw_file_is_transposed_once_for_an_nhwc_model(demo_server, run_locust, tmp_path):
    server = demo_server(models=[ModelConfig(**SMALL_NHWC)])
    path = _save(tmp_path, "nchw.npy", np.ones((4, 3, 8, 8), np.float32))
    run = _run(run_locust, server, "--images-numpy-path", path, "--batch-size", "2")
    assert run.returncode == 0, run.output
    notices = re.findall(r"notice: moving the channel axis: frames \[3,8,8\] are sent as \[8,8,3\] \(NHWC\)", run.output)
    assert len(notices) == 1, run.output
    assert server.counts()["failed"] == 0 and server.counts()["ok"] == 6


def test_wrong_input_name_fails_before_start_listing_the_valid_ones(demo_server, run_locust, small_images):
    server = demo_server(models=[ModelConfig(**SMALL_NHWC)])
    run = _run(run_locust, server, "--images-numpy-path", small_images, "--input-name", "data")
    assert run.returncode == 2, run.output
    assert "error: input name 'data' is not in the model's signature; its inputs: input" in run.output
    assert server.counts()["requests"] == 0


def test_input_name_is_detected_from_the_signature(demo_server, run_locust, small_images):
    server = demo_server(models=[ModelConfig(input_name="pixels", **{k: v for k, v in SMALL_NHWC.items()})])
    run = _run(run_locust, server, "--images-numpy-path", small_images)
    assert run.returncode == 0, run.output
    assert "notice: input name: using the signature's only input 'pixels'" in run.output


def _photos(folder, count=5):
    from PIL import Image

    folder.mkdir()
    for i in range(count):
        Image.new("RGB", (12 + i, 10), (40 * i, 100, 200)).save(folder / f"p{i}.{'png' if i % 2 else 'jpg'}")
    return str(folder)


def test_string_input_refuses_numpy_pixels_and_takes_an_images_dir(demo_server, run_locust, small_images, tmp_path):
    server = demo_server(models=[ModelConfig(name="small", input_name="image_bytes", dtype="string", shape=(-1,),
                                             output_size=10)])
    run = _run(run_locust, server, "--images-numpy-path", small_images)
    assert run.returncode == 2, run.output
    assert ("error: input 'image_bytes' takes DT_STRING (e.g. encoded image bytes); numeric arrays cannot be sent "
            "to it; give --images-dir DIR") in run.output
    run = _run(run_locust, server, "--images-dir", _photos(tmp_path / "photos"), "--batch-size", "2")
    assert run.returncode == 0, run.output
    assert server.counts()["ok"] == 6 and server.counts()["frames"] == 12


def test_several_inputs_from_an_npz_or_input_options_are_sliced_in_step(demo_server, run_locust, tmp_path):
    model = ModelConfig(name="small", input_name="image", shape=(-1, 8, 8, 3), output_size=10,
                        extra_inputs=(("scale", "float32", (-1, 1)),))
    server = demo_server(models=[model])
    images, scale = np.ones((6, 8, 8, 3), np.float32), np.arange(6, dtype=np.float32).reshape(6, 1)
    np.savez(tmp_path / "both.npz", image=images, scale=scale)
    run = _run(run_locust, server, "--images-numpy-path", str(tmp_path / "both.npz"), "--batch-size", "3")
    assert run.returncode == 0, run.output
    assert server.counts()["ok"] == 6 and server.counts()["frames"] == 18
    run = _run(run_locust, server, "--input", f"image={_save(tmp_path, 'i.npy', images)}",
               "--input", f"scale={_save(tmp_path, 's.npy', scale)}")
    assert run.returncode == 0, run.output
    missing = _run(run_locust, server, "--input", f"image={_save(tmp_path, 'i.npy', images)}")
    assert missing.returncode == 2, missing.output
    assert "error: model 'small' needs inputs image, scale; no data for scale" in missing.output
    uneven = _run(run_locust, server, "--input", f"image={_save(tmp_path, 'i.npy', images)}",
                  "--input", f"scale={_save(tmp_path, 's5.npy', scale[:5])}")
    assert uneven.returncode == 2 and "different numbers of rows (image 6, scale 5)" in uneven.output, uneven.output


def test_large_outputs_succeed_with_the_default_limits_and_fail_clearly_below_them(demo_server, run_locust, tmp_path):
    # batch 8 x 1,000,000 float32 outputs = 32 MB per response, 8x gRPC's default 4 MB receive limit
    server = demo_server(models=[ModelConfig(name="small", shape=(-1, 8, 8, 3), output_size=1_000_000)])
    path = _save(tmp_path, "imgs.npy", np.ones((8, 8, 8, 3), np.float32))
    ok = _run(run_locust, server, "--images-numpy-path", path, "--batch-size", "8", iterations=2)
    assert ok.returncode == 0, ok.output
    assert ok.tfs_csv()["Predict small"]["Failures"] == "0"
    limited = _run(run_locust, server, "--images-numpy-path", path, "--batch-size", "8", "--max-message-mb", "1",
                   "--warmup-iterations", "0", iterations=2)
    assert limited.returncode == 1, limited.output
    assert re.search(r"gRPC Predict small: RESOURCE_EXHAUSTED: got \d+ bytes, limit 1048576 \(raise --max-message-mb\)",
                     limited.output), limited.output


def test_unavailable_version_fails_listing_what_is_available(demo_server, run_locust, small_images):
    server = demo_server(models=[ModelConfig(versions=(1,), **SMALL_NHWC)])
    run = _run(run_locust, server, "--images-numpy-path", small_images, "--model-version", "3")
    assert run.returncode == 2, run.output
    assert "error: model 'small' version 3 is not AVAILABLE; the server reports: version 1 AVAILABLE" in run.output


def test_fixed_batch_dimension_must_match_batch_size(demo_server, run_locust, small_images):
    server = demo_server(models=[ModelConfig(name="small", shape=(4, 8, 8, 3), output_size=10)])
    run = _run(run_locust, server, "--images-numpy-path", small_images, "--batch-size", "2")
    assert run.returncode == 2, run.output
    assert "error: input 'input' has a fixed batch dimension 4 but --batch-size is 2; expected --batch-size 4" in run.output


def test_server_without_metadata_falls_back_to_the_options(demo_server, run_locust, small_images):
    server = demo_server(models=[ModelConfig(**SMALL_NHWC)], metadata=False)
    run = _run(run_locust, server, "--images-numpy-path", small_images)
    assert run.returncode == 0, run.output
    assert "notice: the server does not implement ModelService/GetModelStatus" in run.output
    assert "notice: the server does not implement GetModelMetadata; input name, dtype and shape are used as given" in run.output


def test_synthetic_data_takes_its_shape_and_dtype_from_the_signature(demo_server, run_locust):
    server = demo_server(models=[ModelConfig(name="small", dtype="uint8", shape=(-1, 6, 5, 3), output_size=10)])
    run = _run(run_locust, server, "--batch-size", "2")
    assert run.returncode == 0, run.output
    assert server.counts()["ok"] == 6 and server.counts()["frames"] == 12


def test_deadline_exceeded_is_a_failure_and_the_run_ends(demo_server, run_locust, small_images):
    server = demo_server(models=[ModelConfig(**SMALL_NHWC)], delay_ms=2000)
    run = _run(run_locust, server, "--images-numpy-path", small_images, "--timeout", "0.5", "--warmup-iterations", "0",
               iterations=3)
    assert run.returncode == 1, run.output
    assert re.search(r"3\s+gRPC Predict small: DEADLINE_EXCEEDED", run.output), run.output
    row = run.tfs_csv()["Predict small"]
    assert (row["Requests"], row["Failures"]) == ("3", "3")


def test_metadata_is_sent_and_never_printed(demo_server, run_locust, small_images):
    server = demo_server(models=[ModelConfig(**SMALL_NHWC)])
    run = _run(run_locust, server, "--images-numpy-path", small_images, "--grpc-metadata", "Authorization=Bearer s3cret",
               "--grpc-compression", "gzip")
    assert run.returncode == 0, run.output
    assert server.last_call_metadata.get("authorization") == "Bearer s3cret"
    assert "s3cret" not in run.output
    assert "s3cret" not in "".join(p.read_text() for p in run.folder.glob("out*.csv"))


def _certificates(folder, server_name="tfs.test"):
    """A CA, and server and client certificates it signed for DNS name ``server_name``, in ``folder`` (openssl)."""

    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
            "-subj", "/CN=tfs-test-ca")
    for name in ("server", "client"):
        (folder / f"{name}.ext").write_text(f"subjectAltName=DNS:{server_name}\n")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN={name}")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.pem", "-days", "1", "-extfile", f"{name}.ext")
    return {name: (folder / name).read_bytes() for name in ("ca.pem", "server.pem", "server.key")}


def test_mutual_tls(demo_server, run_locust, small_images, tmp_path):
    pem = _certificates(tmp_path)
    server = demo_server(models=[ModelConfig(**SMALL_NHWC)], tls=(pem["server.pem"], pem["server.key"], pem["ca.pem"]))
    port = server.address.split(":")[1]
    run = run_locust("--host", f"grpcs://127.0.0.1:{port}", "-u", "1", "-r", "1", "--iterations", "5",
                     "--model-name", "small", "--images-numpy-path", small_images,
                     "--grpc-tls-ca", "ca.pem", "--grpc-tls-cert", "client.pem", "--grpc-tls-key", "client.key",
                     "--grpc-tls-server-name", "tfs.test")
    assert run.returncode == 0, run.output
    assert server.counts()["ok"] == 6
    plain = run_locust("--host", f"127.0.0.1:{port}", "-u", "1", "-r", "1", "--iterations", "1",
                       "--model-name", "small", "--images-numpy-path", small_images)
    assert plain.returncode == 2, plain.output
    assert f"error: the server at 127.0.0.1:{port} speaks TLS but the host is plaintext; use --host grpcs://" in plain.output


def test_a_restarted_server_gives_unavailable_then_successes_again(small_images, tmp_path):
    first = DemoServer(models=[ModelConfig(**SMALL_NHWC)], delay_ms=2)
    first.start()
    port = first.port
    locust = subprocess.Popen(
        locust_command("--headless", "--host", first.address, "-u", "2", "-r", "2", "-t", "8s", "--model-name", "small",
                       "--images-numpy-path", small_images, "--csv", "out"),
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    second = None
    try:
        deadline = time.monotonic() + 30
        while first.counts()["ok"] < 50 and time.monotonic() < deadline:
            time.sleep(0.05)
        first.stop()
        time.sleep(1.5)
        second = DemoServer(models=[ModelConfig(**SMALL_NHWC)], delay_ms=2, port=port)
        second.start()
        output, _ = locust.communicate(timeout=60)
    finally:
        if locust.poll() is None:
            locust.kill()
        first.stop()
        if second is not None:
            second.stop()
    assert locust.returncode == 1, output  # some requests failed
    assert re.search(r"\d+\s+gRPC Predict small: UNAVAILABLE", output), output
    assert second.counts()["ok"] > 50, output  # the users came back
    assert "Traceback" not in output

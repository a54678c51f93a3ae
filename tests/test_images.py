"""Photos to .npy: real image files written with Pillow, the real command line."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tfs_user.data.images import list_images, load_images, main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


@pytest.fixture
def photos(tmp_path):
    """A folder with a red PNG (wide), a green PNG (tall, with alpha), a blue JPEG and two files to skip."""
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.new("RGB", (40, 20), RED).save(folder / "a_red.png")
    Image.new("RGBA", (16, 48), (*GREEN, 128)).save(folder / "b_green.PNG")
    Image.new("RGB", (30, 30), BLUE).save(folder / "c_blue.jpg", quality=100)
    (folder / "notes.txt").write_text("not an image")
    (folder / "sub").mkdir()
    Image.new("RGB", (8, 8), RED).save(folder / "sub" / "d_nested.png")
    return folder


def test_list_images_sorted_non_recursive(photos):
    assert [os.path.basename(p) for p in list_images(str(photos))] == ["a_red.png", "b_green.PNG", "c_blue.jpg"]


@pytest.mark.parametrize("dtype", ["float32", "uint8"])
def test_load_nhwc(photos, dtype):
    array = load_images(list_images(str(photos)), size=16, layout="NHWC", dtype=dtype)
    assert array.shape == (3, 16, 16, 3) and array.dtype == np.dtype(dtype)
    assert (array[0] == RED).all() and (array[1] == GREEN).all()
    np.testing.assert_allclose(array[2].reshape(-1, 3), np.broadcast_to(BLUE, (256, 3)), atol=3)  # JPEG is lossy


def test_load_nchw(photos):
    array = load_images(list_images(str(photos)), size=8, layout="nchw", dtype="float32")
    assert array.shape == (3, 3, 8, 8) and array.flags.c_contiguous
    assert (array[0, 0] == 255).all() and (array[0, 1] == 0).all() and (array[0, 2] == 0).all()


def test_resize_shorter_side_then_center_crop(tmp_path):
    # 60x20 image: left third red, middle green, right third blue. Shorter side 20 -> 10 gives
    # 30x10; the center 10x10 crop is the green middle.
    image = Image.new("RGB", (60, 20), RED)
    image.paste(GREEN, (20, 0, 40, 20))
    image.paste(BLUE, (40, 0, 60, 20))
    image.save(tmp_path / "stripes.png")
    array = load_images([str(tmp_path / "stripes.png")], size=10, layout="NHWC", dtype="uint8")
    assert array.shape == (1, 10, 10, 3)
    assert (array[0, :, 1:-1] == GREEN).all()


def run(*args):
    return subprocess.run([sys.executable, "-m", "tfs_user.data.images", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_cli_writes_npy(photos, tmp_path):
    out = tmp_path / "imgs.npy"
    proc = run(str(photos), "--size", "12", "--layout", "NCHW", "--dtype", "uint8", "--limit", "2", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (f"skipped 2 entries of {photos} that are not .jpg/.jpeg/.png files: notes.txt, sub/\n"
                           f"wrote {out}: 2 images, shape [2,3,12,12], uint8\n")
    array = np.load(out)
    assert array.shape == (2, 3, 12, 12) and array.dtype == np.uint8
    assert (array[1, 1] == 255).all()  # green
    assert sorted(os.listdir(tmp_path)) == ["imgs.npy", "photos"]  # no temporary file left


def test_cli_default_float32_nhwc(photos, tmp_path, capsys):
    out = tmp_path / "imgs.npy"
    assert main([str(photos), "-o", str(out), "--size", "4"]) == 0
    assert capsys.readouterr().out.endswith(f"\nwrote {out}: 3 images, shape [3,4,4,3], float32\n")
    assert np.load(out).dtype == np.float32 and np.load(out).max() == 255.0


@pytest.mark.parametrize("case, message", [
    ("missing dir", "does not exist"),
    ("no images", "no .jpg/.jpeg/.png files"),
    ("bad image", "bad.jpg"),
    ("size 0", "'0' is not valid; expected an integer > 0"),
    ("bad layout", "layout 'NWHC' is not supported; expected NHWC or NCHW"),
    ("missing output dir", "does not exist"),
])
def test_cli_errors(photos, tmp_path, capsys, case, message):
    out = tmp_path / "imgs.npy"
    empty = tmp_path / "empty"
    empty.mkdir()
    args = {
        "missing dir": [str(tmp_path / "nope"), "-o", str(out)],
        "no images": [str(empty), "-o", str(out)],
        "bad image": [str(photos), "-o", str(out)],
        "size 0": [str(photos), "--size", "0", "-o", str(out)],
        "bad layout": [str(photos), "--layout", "NWHC", "-o", str(out)],
        "missing output dir": [str(photos), "-o", str(tmp_path / "nope" / "imgs.npy")],
    }[case]
    if case == "bad image":
        (photos / "bad.jpg").write_bytes(b"not a jpeg")
    try:
        code = main(args)
    except SystemExit as e:  # argparse errors
        code = e.code
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err.startswith("error: ") and captured.err.count("\n") == 1 and message in captured.err, captured.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "photos"]  # nothing written
    assert not [p for p in photos.iterdir() if p.name.startswith(".tmp-")]


def test_cli_error_subprocess_has_no_traceback(tmp_path):
    proc = run(str(tmp_path / "nope"), "-o", str(tmp_path / "imgs.npy"))
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("error: image folder") and proc.stderr.count("\n") == 1, proc.stderr


# --- issue 30: exit codes of both entry points, 16-bit images, skipped entries named ---

def _truncated_jpeg(path):
    Image.new("RGB", (64, 64), BLUE).save(path, quality=90)
    path.write_bytes(path.read_bytes()[:300])


@pytest.mark.parametrize("module", ["tfs_user.images", "tfs_user.data.images"])
def test_both_entry_points_exit_2_with_one_line_on_each_error(tmp_path, module):
    empty = tmp_path / "empty"
    empty.mkdir()
    not_image = tmp_path / "not_image"
    not_image.mkdir()
    (not_image / "a.jpg").write_text("not a jpeg")
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    _truncated_jpeg(truncated / "t.jpg")
    for folder, says in ((empty, "no .jpg/.jpeg/.png files"), (not_image, "a.jpg"), (truncated, "t.jpg")):
        out = tmp_path / "imgs.npy"
        proc = subprocess.run([sys.executable, "-m", module, str(folder), "-o", str(out)], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and proc.stdout == "", (module, folder, proc)
        assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1 and says in proc.stderr, proc.stderr
        assert not out.exists()


def test_16_bit_grey_images_are_scaled_as_tensorflow_does(tmp_path):
    # TensorFlow: decode_png(dtype=uint16) + convert_image_dtype(uint8) gives 32768 -> 128, 1000 -> 3, 65535 -> 255
    # (checked by hand with TensorFlow 2.21); Pillow's convert("RGB") gave 255, 255, 255.
    folder = tmp_path / "grey16"
    folder.mkdir()
    for name, value in (("a_mid.png", 32768), ("b_dark.png", 1000), ("c_white.png", 65535), ("d_black.png", 0)):
        Image.fromarray(np.full((6, 6), value, dtype=np.uint16)).save(folder / name)
        assert Image.open(folder / name).mode.startswith("I")  # really 16-bit
    array = load_images(list_images(str(folder)), size=6, layout="NHWC", dtype="uint8")
    assert [np.unique(a).tolist() for a in array] == [[128], [3], [255], [0]]


def test_skipped_entries_are_named(photos, tmp_path):
    proc = run(str(photos), "--size", "4", "-o", str(tmp_path / "imgs.npy"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == (f"skipped 2 entries of {photos} that are not .jpg/.jpeg/.png files: "
                                           "notes.txt, sub/")

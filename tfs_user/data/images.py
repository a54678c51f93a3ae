"""Real photos to the ``.npy`` file the load test reads.

    python -m tfs_user.images DIR --size 224 --layout NHWC -o imgs.npy [--dtype float32|uint8] [--limit N]

Reads the JPEG and PNG files directly in DIR (not in sub-folders; extensions
.jpg, .jpeg, .png in any case), in order of file name. Each image is turned
upright by its EXIF orientation, converted to RGB (alpha dropped, grey and
palette images expanded; 16-bit images scaled to 8 bits as TensorFlow's ``decode_png`` +
``convert_image_dtype`` do, ``v >> 8``: 32768 -> 128, 1000 -> 3), resized so that its shorter side is ``size`` pixels
(bilinear, aspect ratio kept), then center-cropped to ``size`` x ``size``.

The result is ``[n, size, size, 3]`` (NHWC) or ``[n, 3, size, size]`` (NCHW),
channels in RGB order. Pixel values stay 0..255: float32 holds them as floats
(no scaling, no mean subtraction: normalise in the model or with your own
script), uint8 holds them as they are. The file is written to a temporary name
in the same folder and then renamed, so a failed run leaves nothing half-written.
Entries of DIR that are not read (other files, sub-folders) are named in one line.
"""

import argparse
import os
import sys
import tempfile

import numpy as np
from PIL import Image, ImageOps

EXTENSIONS = (".jpg", ".jpeg", ".png")
"""File name endings read from the folder (compared case-insensitively)."""
LAYOUTS = ("NHWC", "NCHW")
DTYPES = ("float32", "uint8")


def list_images(folder):
    """Paths of the JPEG/PNG files directly in ``folder``, sorted by file name.

    Raises ValueError if ``folder`` is not a directory.
    """
    if not os.path.isdir(folder):
        raise ValueError(f"image folder {folder!r} does not exist or is not a directory; expected a folder of .jpg/.jpeg/.png files")
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(EXTENSIONS))
    return [os.path.join(folder, n) for n in names if os.path.isfile(os.path.join(folder, n))]


def skipped_entries(folder):
    """Names of the entries directly in ``folder`` that ``list_images`` does not read (sub-folders end in "/")."""
    taken = {os.path.basename(p) for p in list_images(folder)}
    return [n + ("/" if os.path.isdir(os.path.join(folder, n)) else "") for n in sorted(os.listdir(folder))
            if n not in taken]


SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
"""Pillow modes of 16-bit grey PNGs ("I": 32-bit integers holding 0..65535). Pillow's ``convert("RGB")`` clips
them at 255 (mid-grey 32768 and dark 1000 both become white); 16-bit RGB(A) PNGs are read as 8 bits already."""


def _rgb(image):
    """``image`` as 8-bit RGB; 16-bit grey scaled by ``>> 8`` (TensorFlow: 32768 -> 128, 1000 -> 3)."""
    if image.mode in SIXTEEN_BIT_MODES:
        words = np.clip(np.asarray(image, dtype=np.int64), 0, 65535)
        image = Image.fromarray((words >> 8).astype(np.uint8), mode="L")
    return image.convert("RGB")


def _square(image, size):
    """Resize the shorter side to ``size`` (bilinear), then center-crop to size x size."""
    width, height = image.size
    scale = size / min(width, height)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    image = image.resize((new_w, new_h), Image.Resampling.BILINEAR)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return image.crop((left, top, left + size, top + size))


def load_images(paths, size=224, layout="NHWC", dtype="float32"):
    """Load image files into one array.

    Args:
        paths: image file paths, in the order wanted.
        size: height and width of each output image, pixels (> 0).
        layout: "NHWC" -> ``[n, size, size, 3]``, "NCHW" -> ``[n, 3, size, size]``.
        dtype: "float32" (values 0.0..255.0, not normalised) or "uint8".

    Returns the array, RGB channel order. Raises ValueError naming the bad
    value or the file that cannot be read as an image.
    """
    paths = list(paths)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0:
        raise ValueError(f"size {size!r} is not valid; expected an integer > 0")
    layout = str(layout).upper()
    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r} is not supported; expected NHWC or NCHW")
    if np.dtype(dtype).name not in DTYPES:
        raise ValueError(f"dtype {dtype!r} is not supported; expected float32 or uint8")
    if not paths:
        raise ValueError("no image files given; expected at least one .jpg/.jpeg/.png file")
    out = np.empty((len(paths), size, size, 3), dtype=dtype)
    for i, path in enumerate(paths):
        try:
            with Image.open(path) as image:
                image = _rgb(ImageOps.exif_transpose(image))
                out[i] = np.asarray(_square(image, size))
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            raise ValueError(f"cannot read image {path!r}: {e}; expected a readable JPEG or PNG file") from None
    if layout == "NCHW":
        out = np.ascontiguousarray(out.transpose(0, 3, 1, 2))
    return out


def save_npy(path, array):
    """``numpy.save`` to a temporary file next to ``path``, then rename it to ``path`` (atomic).

    Raises ValueError if the folder of ``path`` does not exist.
    """
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"output folder {folder!r} does not exist; expected an existing folder for {path!r}")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".npy")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: "error: ..." on stderr, exit code 2."""

    def error(self, message):
        self.exit(2, f"error: {message}\n")


def _positive(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not valid; expected an integer > 0")
    return value


def _layout(text):
    if text.upper() not in LAYOUTS:
        raise argparse.ArgumentTypeError(f"layout {text!r} is not supported; expected NHWC or NCHW")
    return text.upper()


def build_parser():
    """The command-line parser of ``python -m tfs_user.images``."""
    p = _Parser(prog="python -m tfs_user.images",
                description="Convert a folder of JPEG/PNG photos to a .npy array for the load test.")
    p.add_argument("folder", help="folder with .jpg/.jpeg/.png files (not recursive, sorted by name)")
    p.add_argument("-o", "--output", required=True, help="the .npy file to write")
    p.add_argument("--size", type=_positive, default=224,
                   help="height and width in pixels: shorter side resized to it, then center-cropped (default: 224)")
    p.add_argument("--layout", type=_layout, default="NHWC", help="NHWC or NCHW (default: NHWC)")
    p.add_argument("--dtype", choices=DTYPES, default="float32",
                   help="float32 (pixel values 0..255, not normalised) or uint8 (default: float32)")
    p.add_argument("--limit", type=_positive, default=None, help="use only the first N images (default: all)")
    return p


def main(argv=None):
    """Run the converter; returns the exit code (0 ok, 2 on any error, with one line on stderr)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        paths = list_images(args.folder)
        if not paths:
            raise ValueError(f"no .jpg/.jpeg/.png files in {args.folder!r}; expected at least one image")
        skipped = skipped_entries(args.folder)
        array = load_images(paths[: args.limit], args.size, args.layout, args.dtype)
        save_npy(args.output, array)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if skipped:
        print(f"skipped {len(skipped)} entries of {args.folder} that are not .jpg/.jpeg/.png files: {', '.join(skipped)}")
    shape = ",".join(str(d) for d in array.shape)
    print(f"wrote {args.output}: {len(array)} images, shape [{shape}], {array.dtype}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

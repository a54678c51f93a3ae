"""Input data: load the numpy file (or .npz, images folder, synthetic frames), cut it into batches.

The file holds images as stored by the user, ``[n, h, w, c]`` or ``[n, c, h, w]``
(any rank >= 1 works: axis 0 is the image axis; ``[n]`` is one value per example). It is opened with
``mmap_mode='r'``, so a file larger than RAM works and only the pages a batch
touches are read.

Batching rule (documented in README "Batches"): batch ``k`` holds rows
``(k*b + j) mod n`` for ``j = 0..b-1``. Batches are consecutive slices of axis 0
that wrap around the end of the file: with n=10, b=4 the batches are rows
0-3, 4-7, 8,9,0,1, 2-5, ... A batch larger than the file repeats rows (n=3, b=4:
0,1,2,0). One pass over the file is ``ceil(n / b)`` batches; the sequence of
batches repeats after ``n / gcd(n, b)`` batches.

Request bodies are built from the batches by ``tfs_user.requests``.
"""

import math
import os
import zipfile

import numpy as np

from tfs_user.data.ranges import synthetic_range
from tfs_user.protocols.tfs.tensors import dtype_to_dt


class DataError(ValueError):
    """Bad input data; the message is one line naming the value and what was expected."""


def load_array(path):
    """Open a ``.npy`` file as a read-only memory map and check it can be sent.

    Returns an ``np.ndarray`` (``np.memmap``) of shape ``[n, ...]``, rank >= 1 (``[n]``: one value per example),
    n >= 1, with a dtype that maps to a TensorProto DataType.

    Raises DataError (one line) for: a missing or unreadable file, a file that
    is not ``.npy``, a pickled/object array, a structured dtype, a 0-d array, or an empty array.
    """
    label = f"numpy file {path!r}"
    if not os.path.exists(path):
        raise DataError(f"{label} does not exist; expected a .npy file written by numpy.save")
    if os.path.isdir(path):
        raise DataError(f"{label} is a directory; expected a .npy file written by numpy.save")
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
    except OSError as e:
        raise DataError(f"{label} cannot be read ({e.strerror}); expected a readable .npy file") from None
    if magic != b"\x93NUMPY":
        kind = "a .npz archive" if magic[:2] == b"PK" else "not a .npy file"
        raise DataError(f"{label} is {kind}; expected a single array written by numpy.save")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as e:
        # numpy: "Array can't be memory-mapped: Python objects in dtype." (mmap) or
        # "Object arrays cannot be loaded when allow_pickle=False"
        if "Python objects" in str(e) or "allow_pickle" in str(e):
            raise DataError(f"{label} holds a pickled object array; expected a numeric array") from None
        raise DataError(f"{label} is not a valid .npy file ({e})") from None
    except OSError as e:
        raise DataError(f"{label} cannot be read ({e}); expected a valid .npy file") from None
    return check_array(array, label)


def check_array(array, label):
    """Return ``array`` if it can be sent (numeric, rank >= 1, not empty); else DataError naming ``label``."""
    if array.dtype.fields is not None:
        raise DataError(f"{label} has structured dtype {array.dtype}; expected a plain numeric dtype")
    try:
        dtype_to_dt(array.dtype)
    except ValueError as e:
        raise DataError(f"{label}: {e}") from None
    if array.ndim < 1:
        raise DataError(f"{label} has shape {list(array.shape)}; expected at least 1 dimension [n, ...] with examples "
                        "on axis 0 ([n] for an input of one value per example)")
    if array.shape[0] == 0 or array.size == 0:
        raise DataError(f"{label} has shape {list(array.shape)} and holds no data; expected at least one image")
    return array


class Batches:
    """Consecutive, wrapping batches of ``batch_size`` rows from an array ``[n, ...]``
    (or a list of n encoded images, ``bytes``).

    ``batch(k)`` returns batch ``k`` (any k >= 0) as an array ``[batch_size, ...]``
    with the file's dtype (or a list of bytes). Raises DataError when batch_size < 1.
    """

    def __init__(self, array, batch_size):
        if batch_size < 1:
            raise DataError(f"batch size {batch_size} is not valid; expected an integer >= 1")
        self.array = array
        self.batch_size = int(batch_size)
        self.rows = len(array)
        self.period = self.rows // math.gcd(self.rows, self.batch_size)
        """Number of distinct batches; batch k equals batch k + period."""
        self.one_pass = -(-self.rows // self.batch_size)
        """Batches needed to send every row at least once: ceil(n / batch_size)."""

    def batch(self, k):
        start = (k * self.batch_size) % self.rows
        if start + self.batch_size <= self.rows:
            return self.array[start : start + self.batch_size]
        index = np.arange(start, start + self.batch_size) % self.rows
        if isinstance(self.array, list):  # encoded images: a list of bytes
            return [self.array[i] for i in index]
        return np.take(self.array, index, axis=0)


SYNTHETIC_FRAMES = 8


def synthetic_array(frame_shape, frames=SYNTHETIC_FRAMES, dtype=np.float32):
    """Seeded random frames ``[frames, *frame_shape]`` of ``dtype`` with pixel-like values inside its range:
    floats uniform in 0..255, integers 0..255 (int8 0..127), bool False/True (``tfs_user.data.ranges``)."""
    rng = np.random.default_rng(0)
    dtype = np.dtype(dtype)
    low, high = synthetic_range(dtype)
    shape = (frames, *frame_shape)
    if dtype.kind == "f":
        return rng.uniform(low, high, size=shape).astype(dtype)
    return rng.integers(low, high, size=shape, endpoint=True).astype(dtype)


def open_data(path):
    """The arrays of a data file by input name: ``{"": array}`` for a ``.npy``
    (memory-mapped), ``{name: array, ...}`` for an ``.npz``. Raises DataError."""
    if os.path.isfile(path) and zipfile.is_zipfile(path):
        return load_npz(path)
    return {"": load_array(path)}


def load_npz(path):
    """Arrays of an ``.npz`` file by name, for models with several inputs (loaded into memory: .npz
    members cannot be memory-mapped). Each is checked like ``load_array``; raises DataError."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (ValueError, OSError) as e:
        raise DataError(f"numpy archive {path!r} cannot be read ({e}); expected an .npz written by numpy.savez") from None
    if not arrays:
        raise DataError(f"numpy archive {path!r} holds no arrays; expected one array per input name")
    for name, array in arrays.items():
        check_array(array, f"array {name!r} in {path!r}")
    return arrays


def load_encoded_images(folder):
    """The bytes of every JPEG/PNG file in ``folder`` (sorted by name), for DT_STRING inputs; raises DataError."""
    from tfs_user.data.images import list_images

    if not os.path.isdir(folder):
        raise DataError(f"--images-dir {folder!r} is not a directory; expected a folder of JPEG/PNG files")
    paths = list_images(folder)
    if not paths:
        raise DataError(f"--images-dir {folder!r} holds no .jpg/.jpeg/.png files")
    images = []
    for path in paths:
        with open(path, "rb") as f:
            images.append(f.read())
    return images

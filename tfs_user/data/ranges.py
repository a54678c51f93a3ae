"""Whether data fits the dtype it is cast to: the values' range against the dtype's, once per source.

numpy's ``astype`` wraps integers (300 -> uint8 44, 200 -> int8 -56), sends out-of-range floats to
an undefined integer (1e10 -> uint8 0), turns any non-zero into True (0.5 -> bool True) and large
floats into inf (float64 1e39 -> float32 inf), without a word. ``cast_problem`` scans the data once
(in row chunks, so a memory-mapped file larger than RAM works) and says what would be lost;
``clip_cast`` is the cast ``--allow-lossy-cast`` asks for instead: values saturate at the dtype's
limits. ``synthetic_range`` is where synthetic frames draw their values. Imports neither gRPC nor Locust.
"""

import numpy as np

CHUNK_BYTES = 64 << 20
"""Bytes of data scanned at a time."""


def dtype_range(dtype):
    """(lowest, highest) value ``dtype`` holds: bool (0, 1), integers their iinfo, floats their finite finfo."""
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return 0, 1
    info = np.iinfo(dtype) if dtype.kind in "iu" else np.finfo(dtype)
    return info.min, info.max


def _number(value):
    """A value for messages: integers as integers, floats in short form (300, 255.5, 1e+10)."""
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def _scan(data, dtype):
    """(lowest, highest, has NaN, has a value other than 0/1) over ``data``; floats bound only by their finite values
    when the target is a float (inf and NaN stay as they are)."""
    rows = max(1, CHUNK_BYTES // max(1, data[:1].nbytes))
    lowest = highest = None
    nan = not_binary = False
    target_float = np.dtype(dtype).kind == "f"
    for start in range(0, len(data), rows):
        chunk = np.asarray(data[start:start + rows])
        if chunk.dtype.kind == "f":
            finite = np.isfinite(chunk)
            nan = nan or bool(np.isnan(chunk).any())
            if target_float:
                chunk = chunk[finite]
            elif not finite.all():
                chunk = chunk[~np.isnan(chunk)]  # +-inf counts as out of range of an integer dtype
        if chunk.size == 0:
            continue
        low, high = chunk.min(), chunk.max()
        lowest = low if lowest is None or low < lowest else lowest
        highest = high if highest is None or high > highest else highest
        if np.dtype(dtype).kind == "b" and chunk.dtype.kind != "b":
            not_binary = not_binary or bool(((chunk != 0) & (chunk != 1)).any())
    return lowest, highest, nan, not_binary


def cast_problem(data, dtype):
    """Why casting ``data`` (an array ``[n, ...]``) to ``dtype`` would change values, or None.

    The text names the range found and ``dtype``'s range, e.g. "values -200..200 lie outside int8's
    range -128..127". Casts that cannot lose range (``numpy.can_cast(..., "safe")``, e.g. uint8 to
    float32) are not scanned; fractions cast to an integer dtype are truncated, as numpy does.
    """
    source, dtype = np.dtype(data.dtype), np.dtype(dtype)
    if source.newbyteorder("=") == dtype.newbyteorder("=") or np.can_cast(source, dtype, "safe"):
        return None
    lowest, highest, nan, not_binary = _scan(data, dtype)
    if nan and dtype.kind in "iub":
        return f"the values include NaN, which {dtype.name} cannot hold"
    if lowest is None:
        return None
    low, high = dtype_range(dtype)
    found = f"values {_number(lowest)}..{_number(highest)}"
    if dtype.kind == "b":
        return f"{found} are not all 0 or 1 ({dtype.name} holds 0/1)" if not_binary else None
    # Python numbers compare exactly across int and float (2.0**64 > 2**64 - 1; numpy would round both)
    lowest, highest, low, high = (v.item() if hasattr(v, "item") else v for v in (lowest, highest, low, high))
    if lowest < low or highest > high:
        return f"{found} lie outside {dtype.name}'s range {_number(low)}..{_number(high)}"
    return None


def clip_cast(batch, dtype):
    """``batch`` cast to ``dtype`` with values saturated at its limits (NaN -> 0 for integer dtypes, any
    non-zero -> True for bool): the cast ``--allow-lossy-cast`` asks for instead of numpy's wrapping."""
    dtype = np.dtype(dtype)
    if dtype.kind == "b" or np.can_cast(batch.dtype, dtype, "safe"):
        return batch.astype(dtype)
    low, high = dtype_range(dtype)
    if batch.dtype.kind in "iu" and dtype.kind in "iu":  # integer limits the source dtype can hold, compared exactly
        source = np.iinfo(batch.dtype)
        low, high = max(int(low), int(source.min)), min(int(high), int(source.max))
        return np.clip(batch, np.array(low, batch.dtype), np.array(high, batch.dtype)).astype(dtype)
    if dtype.kind == "f":  # inf and NaN stay as they are
        return np.where(np.isfinite(batch), np.clip(batch, low, high), batch).astype(dtype)
    batch = np.nan_to_num(np.asarray(batch, dtype=np.float64), nan=0.0, posinf=np.inf, neginf=-np.inf)
    top = float(high) if float(high) <= high else np.nextafter(float(high), 0.0)  # int64's top is not a float64
    return np.clip(batch, float(low), top).astype(dtype)


def synthetic_range(dtype):
    """(low, high) of synthetic frame values for ``dtype``: pixel-like 0..255 within the dtype's range
    (int8 0..127, bool 0..1)."""
    low, high = dtype_range(dtype)
    return max(0, low), min(255, high)

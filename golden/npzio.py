"""Data-only NPZ bytes: deterministic to write, never unpickled to read, bfloat16-aware.

bfloat16 arrays (ml_dtypes) are stored as their uint16 bit patterns and listed in the `__bfloat16__`
entry, so any numpy reads the file.  Used by the golden fixtures and by the remote-adapter wire format.
"""
from __future__ import annotations

import io
import json
import zipfile

import ml_dtypes
import numpy as np

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same arrays give the same bytes
BF16_KEY = "__bfloat16__"


def dumps(arrays: dict[str, np.ndarray], compress: bool = True) -> bytes:
    arrays = dict(arrays)
    bits = sorted(k for k, v in arrays.items() if np.asarray(v).dtype == ml_dtypes.bfloat16)
    for k in bits:
        arrays[k] = np.asarray(arrays[k]).view(np.uint16)
    if bits:
        arrays[BF16_KEY] = json_array(bits)
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as zf:
        for key in sorted(arrays):
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_DATE)
            info.compress_type = method
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            zf.writestr(info, member.getvalue(), compresslevel=9 if compress else None)
    return buf.getvalue()


def loads(data: bytes) -> dict[str, np.ndarray]:
    """Raises ValueError (pickled objects, bad format) or zipfile/zlib/OS errors on corrupt bytes."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    if BF16_KEY in arrays:
        for k in from_json_array(arrays.pop(BF16_KEY)):
            arrays[k] = arrays[k].view(ml_dtypes.bfloat16)
    return arrays


def json_array(obj) -> np.ndarray:
    return np.frombuffer(json.dumps(obj, sort_keys=True).encode(), dtype=np.uint8)


def from_json_array(a: np.ndarray):
    return json.loads(a.tobytes().decode())

"""A small reader for MATLAB v5 ``.mat`` files (enough for SBD's ``cls/*.mat``), so no SciPy is needed.

Supports numeric, logical, char, cell, struct and (skipped) sparse arrays, little- or
big-endian files, and zlib-compressed elements.  Arrays come back in C order with
MATLAB's shape; structs as dicts (one-element structs unwrapped).
"""
import struct
import zlib

import numpy as np

from ...errors import UserError

_TYPES = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 9: "f8", 12: "i8", 13: "u8",
          16: "u1", 17: "u2", 18: "u4"}
_CLASS_DTYPE = {6: "f8", 7: "f4", 8: "i1", 9: "u1", 10: "i2", 11: "u2", 12: "i4", 13: "u4", 14: "i8", 15: "u8"}
MI_MATRIX, MI_COMPRESSED = 14, 15
MX_CELL, MX_STRUCT, MX_OBJECT, MX_CHAR, MX_SPARSE = 1, 2, 3, 4, 5


class MatError(UserError):
    pass


class _Reader:
    def __init__(self, data, endian):
        self.data, self.pos, self.e = data, 0, endian

    def tag(self):
        first, second = struct.unpack(self.e + "II", self.data[self.pos:self.pos + 8])
        if first >> 16:  # small data element: type and size packed in 4 bytes, data in the next 4
            mtype, nbytes = first & 0xFFFF, first >> 16
            payload = self.data[self.pos + 4:self.pos + 4 + nbytes]
            self.pos += 8
            return mtype, payload
        mtype, nbytes = first, second
        payload = self.data[self.pos + 8:self.pos + 8 + nbytes]
        self.pos += 8 + nbytes
        if mtype != MI_COMPRESSED:
            self.pos += (-nbytes) % 8
        return mtype, payload

    def numeric(self):
        mtype, payload = self.tag()
        if mtype not in _TYPES:
            raise MatError(f"unexpected data type {mtype}")
        return np.frombuffer(payload, dtype=self.e.replace("<", "<").replace(">", ">") + _TYPES[mtype])


def _element(mtype, payload, endian):
    if mtype == MI_COMPRESSED:
        inner = _Reader(zlib.decompress(payload), endian)
        return _element(*inner.tag(), endian)
    if mtype != MI_MATRIX:
        raise MatError(f"expected a matrix element, got type {mtype}")
    if not payload:
        return np.zeros((0,))
    r = _Reader(payload, endian)
    flags = r.numeric()
    mclass = int(flags[0]) & 0xFF
    dims = tuple(int(d) for d in r.numeric())
    r.numeric()  # name
    if mclass == MX_CELL:
        items = [_element(*r.tag(), endian) for _ in range(int(np.prod(dims)))]
        cell = np.empty(len(items), dtype=object)
        cell[:] = items
        return cell.reshape(dims[::-1]).T if items else cell
    if mclass in (MX_STRUCT, MX_OBJECT):
        if mclass == MX_OBJECT:
            r.numeric()  # class name
        flen = int(r.numeric()[0])
        raw = bytes(r.numeric())
        names = [raw[i:i + flen].split(b"\0")[0].decode() for i in range(0, len(raw), flen)]
        elems = [{n: _element(*r.tag(), endian) for n in names} for _ in range(int(np.prod(dims)))]
        return elems[0] if len(elems) == 1 else elems
    if mclass == MX_SPARSE:
        return None  # not needed here
    if mclass == MX_CHAR:
        return "".join(chr(c) for c in r.numeric())
    if mclass not in _CLASS_DTYPE:
        raise MatError(f"unsupported MATLAB class {mclass}")
    real = r.numeric().astype(endian + _CLASS_DTYPE[mclass])
    return real.reshape(dims[::-1]).T.copy()   # MATLAB is column-major


def loadmat(path):
    """``{variable name: value}`` of a MATLAB v5 file."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 128:
        raise MatError(f"{path}: not a MATLAB v5 file (too short)")
    endian = {b"IM": "<", b"MI": ">"}.get(data[126:128])
    if endian is None:
        raise MatError(f"{path}: not a MATLAB v5 file (no endian marker; v7.3/HDF5 files are not supported)")
    r = _Reader(data[128:], endian)
    out = {}
    while r.pos < len(r.data):
        mtype, payload = r.tag()
        if mtype == MI_COMPRESSED:
            payload_reader = _Reader(zlib.decompress(payload), endian)
            mtype, payload = payload_reader.tag()
        if mtype != MI_MATRIX:
            continue
        name_reader = _Reader(payload, endian)
        name_reader.numeric()
        name_reader.numeric()
        name = bytes(name_reader.numeric()).decode()
        out[name] = _element(mtype, payload, endian)
    return out

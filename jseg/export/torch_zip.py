"""Write (and read) PyTorch's checkpoint format without PyTorch: ``torch.save``'s zip layout.

The format (``torch/serialization.py``, ``caffe2/serialize/inline_container.cc``; version 3):
an uncompressed zip whose records sit under one folder (``archive/``):

* ``data.pkl``: the object, pickled (protocol 2); each tensor is the call
  ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, OrderedDict())``
  and each storage a persistent id ``('storage', torch.<Type>Storage, key, 'cpu', numel)``;
* ``data/<key>``: the storage's bytes, little-endian, each record's data aligned to 64 bytes;
* ``byteorder`` (``little``) and ``version`` (``3``).

``save`` writes numpy arrays (0-d included) as tensors inside dicts/OrderedDicts/lists/tuples of
plain Python values; ``load`` reads such a file back into numpy without torch (used by the tests as
an independent reader, and for files torch wrote).
"""
import io
import pickle
import struct
import zipfile
from collections import OrderedDict

import numpy as np

from ..fileio import atomic_path

# numpy dtype -> torch storage class name
STORAGES = {np.dtype(np.float32): "FloatStorage", np.dtype(np.float64): "DoubleStorage",
            np.dtype(np.float16): "HalfStorage", np.dtype(np.int64): "LongStorage",
            np.dtype(np.int32): "IntStorage", np.dtype(np.int16): "ShortStorage",
            np.dtype(np.int8): "CharStorage", np.dtype(np.uint8): "ByteStorage",
            np.dtype(np.bool_): "BoolStorage"}
DTYPES = {name: dtype for dtype, name in STORAGES.items()}
ALIGN = 64


class _Global:
    """A name pickled as a global reference (``module.name``) without importing it."""

    def __init__(self, module, name):
        self.module, self.name = module, name

    def __call__(self, *args):   # pickle's save_reduce wants a callable; only its name is written
        raise TypeError(f"{self.module}.{self.name} is a name for pickling only")


_REBUILD = _Global("torch._utils", "_rebuild_tensor_v2")
_ORDERED_DICT = _Global("collections", "OrderedDict")


class _Storage:
    def __init__(self, key, array):
        self.key, self.array = key, array


class _Tensor:
    def __init__(self, storage, shape):
        self.storage, self.shape = storage, shape

    def __reduce_ex__(self, protocol):
        stride, acc = [], 1
        for n in reversed(self.shape):   # C-contiguous strides, in elements
            stride.insert(0, acc)
            acc *= n
        return (_REBUILD, (self.storage, 0, tuple(self.shape), tuple(stride), False, _EmptyOrderedDict()))


class _EmptyOrderedDict:
    def __reduce_ex__(self, protocol):
        return (_ORDERED_DICT, ())


class _Pickler(pickle._Pickler):
    """The pure-Python pickler, with our globals written by name and storages as persistent ids."""

    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            return ("storage", _Global("torch", STORAGES[obj.array.dtype]), obj.key, "cpu", int(obj.array.size))
        return None

    def save_global(self, obj, name=None):
        if isinstance(obj, _Global):
            self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode("utf-8"))
            self.memoize(obj)
            return
        super().save_global(obj, name)

    dispatch = dict(pickle._Pickler.dispatch)


_Pickler.dispatch[_Global] = lambda self, obj: self.save_global(obj)


def _wrap(obj, storages):
    """Replace numpy arrays by tensor stand-ins (one storage each) and OrderedDicts by a picklable form."""
    if isinstance(obj, np.ndarray):
        a = obj if obj.flags.c_contiguous else obj.copy(order="C")   # (ascontiguousarray makes 0-d 1-d)
        if a.dtype not in STORAGES:
            raise TypeError(f"dtype {a.dtype} has no PyTorch storage type here")
        s = _Storage(str(len(storages)), a.astype(a.dtype.newbyteorder("<"), copy=False))
        storages.append(s)
        return _Tensor(s, a.shape)
    if isinstance(obj, OrderedDict):
        return OrderedDict((k, _wrap(v, storages)) for k, v in obj.items())
    if isinstance(obj, dict):
        return {k: _wrap(v, storages) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_wrap(v, storages) for v in obj)
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _aligned_info(zf, name):
    """A ZipInfo whose data starts on a multiple of ALIGN (padding in the local header's extra field)."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    offset = zf.fp.tell() + 30 + len(name.encode("utf-8"))
    pad = (-(offset + 4)) % ALIGN
    info.extra = struct.pack("<HH", 0x4246, pad) + b"Z" * pad   # id 'FB', as torch's writer uses
    return info


def save(obj, path, archive="archive"):
    """``torch.save(obj, path)`` for numpy/Python content, written atomically."""
    storages = []
    wrapped = _wrap(obj, storages)
    buf = io.BytesIO()
    _Pickler(buf, protocol=2).dump(wrapped)
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(_aligned_info(zf, f"{archive}/data.pkl"), buf.getvalue())
        zf.writestr(_aligned_info(zf, f"{archive}/byteorder"), b"little")
        for s in storages:
            zf.writestr(_aligned_info(zf, f"{archive}/data/{s.key}"), s.array.tobytes())
        zf.writestr(_aligned_info(zf, f"{archive}/version"), b"3\n")
    return path


class _Unpickler(pickle.Unpickler):
    def __init__(self, f, zf, prefix):
        super().__init__(f)
        self.zf, self.prefix = zf, prefix

    def find_class(self, module, name):
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild
        if module == "torch" and name in DTYPES:
            return name
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        raise pickle.UnpicklingError(f"{module}.{name} is not a tensor, storage or plain container")

    def persistent_load(self, pid):
        kind, storage, key, _location, numel = pid
        if kind != "storage":
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        data = self.zf.read(f"{self.prefix}/data/{key}")
        return np.frombuffer(data, dtype=DTYPES[storage].newbyteorder("<"), count=numel)


def _rebuild(storage, offset, size, stride, requires_grad=False, hooks=None, *rest):
    item = storage.itemsize
    return np.lib.stride_tricks.as_strided(storage[offset:], shape=tuple(size),
                                           strides=tuple(s * item for s in stride)).copy()


def load(path):
    """Read a file in ``torch.save``'s zip format into numpy arrays, without torch."""
    with zipfile.ZipFile(path) as zf:
        pkl = next(n for n in zf.namelist() if n.endswith("/data.pkl"))
        prefix = pkl[:-len("/data.pkl")]
        return _Unpickler(io.BytesIO(zf.read(pkl)), zf, prefix).load()

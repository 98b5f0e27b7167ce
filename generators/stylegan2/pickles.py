"""A restricted reader for official stylegan2-ada-pytorch network pickles.

An official ``.pkl`` is a plain pickle of a dict (``G``, ``D``, ``G_ema``, ``augment_pipe``,
``training_set_kwargs``). Every network in it is stored as a call to
``torch_utils.persistence._reconstruct_persistent_obj(meta)``, whose ``meta`` carries the
Python source of the defining module. The official loader imports and runs that source, so
loading a pickle with it runs whatever code the file holds.

This reader never runs anything from the file. It unpickles with an allow-list of globals
(see ``ALLOWED_GLOBALS``), every one of which is mapped to a small function of ours:

* the reconstruct call becomes a plain record, ``PersistentObject`` (class name, init
  arguments, parameters, buffers, children, other attributes); ``module_src`` is kept as
  text and never imported, compiled or executed;
* ``dnnlib.util.EasyDict`` becomes ``dict``; ``collections.OrderedDict`` is allowed;
* torch's tensor rebuilders become functions that view decoded storages with
  ``torch.as_strided``; ``torch.storage._load_from_bytes`` becomes our own decoder of
  torch's legacy (non-zip) serialisation, which reads its records with an even smaller
  allow-list (storage types and dtypes only) and its raw little-endian bytes with
  ``torch.frombuffer``; ``torch.load`` is never called;
* numpy scalars become Python scalars; numeric numpy arrays are rebuilt;
  ``_codecs.encode(text, 'latin1')`` (how protocol 2 writes bytes) is allowed for latin-1 only.

Any other global is refused with ``UnsafePickleError`` before it is called. After
unpickling, the whole result is checked and rebuilt from plain types, so nothing of the
pickle's own making (hooks, odd attributes set by BUILD opcodes) survives.

The public API: ``read_network_pickle``, ``loads_network_pickle``, ``PersistentObject``,
``NetworkPickleError`` and ``UnsafePickleError``.
"""

from __future__ import annotations

import _compat_pickle
import io
import os
import pickle
import struct
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from ...harness.contracts.errors import FacebenchError
from ...harness.contracts.storages import STORAGE_DTYPES

__all__ = [
    "ALLOWED_GLOBALS",
    "NetworkPickleError",
    "PersistentObject",
    "UnsafePickleError",
    "loads_network_pickle",
    "read_network_pickle",
]


class NetworkPickleError(FacebenchError, ValueError):
    """A network pickle that cannot be read: missing, truncated, corrupted, or of a strange shape."""


class UnsafePickleError(NetworkPickleError):
    """A network pickle that references something a network pickle never needs.

    ``global_name`` holds the offending ``module.name`` when one global was to blame.
    """

    def __init__(self, message: str, global_name: str | None = None):
        super().__init__(message)
        self.global_name = global_name


# ---------------------------------------------------------------------------------------------
# The result


@dataclass(eq=False)
class PersistentObject:
    """One network object of an official pickle, as plain data (nothing of its code)."""

    class_name: str
    module_name: str | None
    init_args: tuple
    init_kwargs: dict
    parameters: dict[str, torch.Tensor] = field(default_factory=dict)
    buffers: dict[str, torch.Tensor] = field(default_factory=dict)
    modules: dict[str, "PersistentObject | None"] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)
    #: ``meta['version']`` of the persistence format (6 in stylegan2-ada-pytorch), if present.
    version: Any = None
    #: The defining module's source, as text only; it is never run.
    module_src: str = field(default="", repr=False)

    def state_dict(self) -> "OrderedDict[str, torch.Tensor]":
        """Parameters, then persistent buffers, then children's entries, with dotted keys."""
        out: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._collect(out, "")
        return out

    def _collect(self, out: OrderedDict, prefix: str) -> None:
        for name, tensor in self.parameters.items():
            out[prefix + name] = tensor
        non_persistent = self.attributes.get("_non_persistent_buffers_set") or ()
        for name, tensor in self.buffers.items():
            if name not in non_persistent:
                out[prefix + name] = tensor
        for name, child in self.modules.items():
            if child is not None:
                child._collect(out, f"{prefix}{name}.")

    def find(self, path: str) -> "PersistentObject":
        """The child at a dotted path (``"synthesis.b4.conv1"``); ``""`` is this object."""
        node = self
        walked: list[str] = []
        for part in path.split(".") if path else []:
            child = node.modules.get(part)
            if child is None:
                where = ".".join(walked) or "the top level"
                have = ", ".join(k for k, v in node.modules.items() if v is not None) or "none"
                raise MissingModuleError(
                    f"{self.class_name} has no submodule {path!r}: no {part!r} under {where} "
                    f"(children there: {have})"
                )
            node = child
            walked.append(part)
        return node

    def named_modules(self, prefix: str = ""):
        """Yield ``(dotted_path, object)`` for this object and all descendants, parents first."""
        yield prefix, self
        for name, child in self.modules.items():
            if child is not None:
                yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def __repr__(self) -> str:
        children = ", ".join(self.modules)
        return (
            f"PersistentObject({self.class_name!r}, parameters={list(self.parameters)}, "
            f"buffers={list(self.buffers)}, modules=[{children}])"
        )


class MissingModuleError(FacebenchError, LookupError):
    """``PersistentObject.find`` was asked for a child that does not exist."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


# ---------------------------------------------------------------------------------------------
# Internal errors (turned into NetworkPickleError / UnsafePickleError naming the file)


def _printable(text: str, limit: int = 120) -> str:
    """A name from the file, safe to print on one line."""
    if not text.isprintable():
        text = text.encode("unicode_escape").decode("ascii")
    return text if len(text) <= limit else text[:limit] + "..."


class _Refused(Exception):
    def __init__(self, global_name: str, where: str = "", message: str | None = None):
        global_name = _printable(global_name)
        super().__init__(global_name)
        self.global_name = global_name
        self.where = where
        self.message = message


class _Corrupt(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Legacy torch storage blobs (torch.storage._load_from_bytes)

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001

_UNTYPED_STORAGE_NAMES = {("torch", "UntypedStorage"), ("torch.storage", "UntypedStorage")}

_DTYPE_NAMES = (
    "float32 float float64 double float16 half bfloat16 complex64 cfloat complex128 cdouble "
    "int64 long int32 int int16 short int8 uint8 bool uint16 uint32 uint64"
).split()
_TORCH_DTYPES: dict[str, torch.dtype] = {
    n: getattr(torch, n) for n in _DTYPE_NAMES if isinstance(getattr(torch, n, None), torch.dtype)
}


class _StorageType:
    """What a storage class name in a persistent id stands for (its element type)."""

    __slots__ = ("dtype", "untyped")

    def __init__(self, dtype: torch.dtype, untyped: bool = False):
        self.dtype = dtype
        self.untyped = untyped

    def __setstate__(self, state):
        raise _Corrupt("a storage type was given state")


class _Storage:
    """A decoded storage: ``numel`` elements of ``data`` (a 1-D tensor) from ``offset`` on."""

    __slots__ = ("data", "offset", "numel", "untyped")

    def __init__(self, data: torch.Tensor, offset: int, numel: int, untyped: bool):
        self.data = data
        self.offset = offset
        self.numel = numel
        self.untyped = untyped

    def __setstate__(self, state):
        raise _Corrupt("a storage was given state")

    def as_tensor(self) -> torch.Tensor:
        return self.data[self.offset : self.offset + self.numel]


def _pickle_module_name(module: str, name: str) -> tuple[str, str]:
    """Undo the Python 2 names that protocols 0-2 write (``__builtin__``, ``copy_reg``)."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


class _NoGlobalsUnpickler(pickle.Unpickler):
    """For the plain records of a legacy blob: numbers, strings, lists, dicts, nothing else."""

    where = "an inner tensor storage"

    def find_class(self, module, name):
        module, name = _pickle_module_name(module, name)
        raise _Refused(f"{module}.{name}", self.where)

    def persistent_load(self, pid):
        raise _Corrupt("unexpected persistent id in an inner storage header")


class _StorageRecordUnpickler(_NoGlobalsUnpickler):
    """The storage record of a legacy blob: storage classes / dtypes and persistent ids only."""

    def __init__(self, file, records: dict):
        super().__init__(file)
        self.records = records

    def find_class(self, module, name):
        module, name = _pickle_module_name(module, name)
        if module in ("torch", "torch.cuda") and name in STORAGE_DTYPES:
            return _StorageType(STORAGE_DTYPES[name])
        if (module, name) in _UNTYPED_STORAGE_NAMES:
            return _StorageType(torch.uint8, untyped=True)
        if module == "torch" and name in _TORCH_DTYPES:
            return _StorageType(_TORCH_DTYPES[name])
        raise _Refused(f"{module}.{name}", self.where)

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage":
            kind = pid[0] if isinstance(pid, tuple) and pid else type(pid).__name__
            raise _Corrupt(f"an inner storage holds a persistent id of kind {kind!r}, not 'storage'")
        storage_type, key, _location, numel = pid[1:5]
        view = pid[5] if len(pid) > 5 else None
        if isinstance(storage_type, torch.dtype):
            storage_type = _StorageType(storage_type)
        if not isinstance(storage_type, _StorageType):
            raise _Corrupt("an inner storage record names no storage type")
        if not isinstance(key, str) or not _is_count(numel):
            raise _Corrupt("an inner storage record is malformed")
        previous = self.records.get(key)
        if previous is None:
            self.records[key] = (storage_type, numel)
        elif previous[1] != numel or previous[0].dtype != storage_type.dtype:
            raise _Corrupt("an inner storage record contradicts an earlier one")
        if view is None:
            return _StorageRef(key, 0, numel)
        if not (isinstance(view, tuple) and len(view) == 3):
            raise _Corrupt("an inner storage view record is malformed")
        _view_key, offset, size = view
        if not (_is_count(offset) and _is_count(size)) or offset + size > numel:
            raise _Corrupt("an inner storage view lies outside its storage")
        return _StorageRef(key, offset, size)


class _StorageRef:
    """What a storage record stands for until the raw data is read: elements of one key."""

    __slots__ = ("key", "offset", "numel")

    def __init__(self, key: str, offset: int, numel: int):
        self.key, self.offset, self.numel = key, offset, numel

    def __setstate__(self, state):
        raise _Corrupt("a storage record was given state")


def _is_count(value) -> bool:
    return type(value) is int and 0 <= value < 2**62


def _decode_storage_blob(blob) -> _Storage:
    """Decode ``torch.save(storage, _use_new_zipfile_serialization=False)`` without torch.load."""
    if not isinstance(blob, (bytes, bytearray)):
        raise _Corrupt("an inner storage is not a byte string")
    view = memoryview(blob)
    f = io.BytesIO(blob)
    try:
        magic = _NoGlobalsUnpickler(f).load()
        if magic != _LEGACY_MAGIC:
            raise _Corrupt("an inner storage does not start with torch's legacy magic number")
        version = _NoGlobalsUnpickler(f).load()
        if version != _LEGACY_PROTOCOL:
            raise _Corrupt(f"an inner storage has unknown legacy protocol version {version!r}")
        sys_info = _NoGlobalsUnpickler(f).load()
        if not isinstance(sys_info, dict):
            raise _Corrupt("an inner storage has a malformed system-info record")
        records: dict[str, tuple[_StorageType, int]] = {}
        top = _StorageRecordUnpickler(f, records).load()
        keys = _NoGlobalsUnpickler(f).load()
    except (_Refused, _Corrupt):
        raise
    except EOFError:
        raise _Corrupt("an inner storage is truncated") from None
    except Exception as exc:  # malformed pickle opcodes and the like
        raise _Corrupt(f"an inner storage is corrupted ({type(exc).__name__}: {exc})") from None
    if type(top) is not _StorageRef:
        raise _Corrupt("an inner storage blob holds something other than one storage")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise _Corrupt("an inner storage has a malformed key list")

    position = f.tell()
    decoded: dict[str, torch.Tensor] = {}
    for key in keys:
        if key not in records:
            raise _Corrupt(f"an inner storage lists data for an unknown key {key!r}")
        storage_type, numel = records[key]
        itemsize = _element_size(storage_type.dtype) if not storage_type.untyped else 1
        if position + 8 > len(view):
            raise _Corrupt("an inner storage is truncated")
        (count,) = struct.unpack_from("<q", view, position)
        position += 8
        if count != numel:
            raise _Corrupt(f"an inner storage says {count} elements where its record says {numel}")
        nbytes = count * itemsize
        if position + nbytes > len(view):
            raise _Corrupt("an inner storage is truncated (its raw data is short)")
        dtype = torch.uint8 if storage_type.untyped else storage_type.dtype
        decoded[key] = _tensor_from_le_bytes(view[position : position + nbytes], dtype)
        position += nbytes

    if top.key not in decoded:
        raise _Corrupt("an inner storage has no data for its storage")
    return _Storage(decoded[top.key], top.offset, top.numel, records[top.key][0].untyped)


def _element_size(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def _tensor_from_le_bytes(data: memoryview, dtype: torch.dtype) -> torch.Tensor:
    """A fresh, writable 1-D tensor from raw little-endian bytes."""
    if len(data) == 0:
        return torch.empty(0, dtype=dtype)
    buffer = bytearray(data)
    if not _native_little_endian():  # pragma: no cover - no big-endian machines here
        size = _element_size(dtype)
        part = size // 2 if dtype.is_complex else size
        arr = np.frombuffer(buffer, np.uint8).reshape(-1, part)[:, ::-1]
        buffer = bytearray(arr.tobytes())
    return torch.frombuffer(buffer, dtype=dtype)


def _native_little_endian() -> bool:
    return np.little_endian


# ---------------------------------------------------------------------------------------------
# Replacements for the globals a network pickle may name


class _Marker:
    """Stands for a class that may only appear as an argument (Tensor, Parameter, ndarray)."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __setstate__(self, state):
        raise _Corrupt(f"{self.name} was given state")

    def __repr__(self) -> str:
        return f"<{self.name}>"


_TENSOR = _Marker("torch.Tensor")
_PARAMETER = _Marker("torch.nn.Parameter")
_NDARRAY = _Marker("numpy.ndarray")


def _check_storage(storage) -> _Storage:
    if not isinstance(storage, _Storage):
        raise _Corrupt(f"a tensor was given a {type(storage).__name__} where a storage belongs")
    return storage


def _check_shape(values, what: str) -> tuple[int, ...]:
    if not isinstance(values, (tuple, list)) or not all(_is_count(v) for v in values):
        raise _Corrupt(f"a tensor has a malformed {what}")
    return tuple(values)


def _view(storage: _Storage, storage_offset, size, stride) -> torch.Tensor:
    """``as_strided`` over the storage's elements, after checking the view stays inside it."""
    if not _is_count(storage_offset):
        raise _Corrupt("a tensor has a malformed storage offset")
    size = _check_shape(size, "size")
    stride = _check_shape(stride, "stride")
    if len(size) != len(stride):
        raise _Corrupt("a tensor's size and stride differ in length")
    if all(size):
        extent = storage_offset + 1 + sum((n - 1) * s for n, s in zip(size, stride))
        if extent > storage.numel:
            raise _Corrupt("a tensor reaches past the end of its storage")
    return torch.as_strided(storage.data, size, stride, storage.offset + storage_offset)


def _apply_metadata(tensor: torch.Tensor, metadata) -> torch.Tensor:
    if not metadata:
        return tensor
    if not isinstance(metadata, dict) or not set(metadata) <= {"conj", "neg"}:
        raise _Corrupt("a tensor has unknown metadata")
    if metadata.get("conj"):
        tensor = tensor.conj()
    if metadata.get("neg"):
        raise _Corrupt("a tensor with the negative bit set is not supported")
    return tensor


def _rebuild_tensor(storage, storage_offset, size, stride) -> torch.Tensor:
    storage = _check_storage(storage)
    return _view(storage, storage_offset, size, stride)


def _rebuild_tensor_v2(
    storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None
):
    tensor = _rebuild_tensor(storage, storage_offset, size, stride)
    tensor = _apply_metadata(tensor, metadata)
    return _set_requires_grad(tensor, requires_grad)


def _rebuild_tensor_v3(
    storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype, metadata=None
):
    storage = _check_storage(storage)
    if not isinstance(dtype, torch.dtype):
        raise _Corrupt("a tensor names no dtype")
    raw = storage.as_tensor()
    if raw.dtype != torch.uint8:
        raw = raw.view(torch.uint8)
    itemsize = _element_size(dtype)
    if raw.numel() % itemsize:
        raise _Corrupt("a tensor's storage size does not fit its dtype")
    data = raw.view(dtype) if raw.numel() else torch.empty(0, dtype=dtype)
    typed = _Storage(data, 0, data.numel(), untyped=False)
    tensor = _view(typed, storage_offset, size, stride)
    tensor = _apply_metadata(tensor, metadata)
    return _set_requires_grad(tensor, requires_grad)


def _set_requires_grad(tensor: torch.Tensor, requires_grad) -> torch.Tensor:
    if type(requires_grad) is not bool:
        raise _Corrupt("a tensor has a malformed requires_grad flag")
    if requires_grad:
        if not (tensor.is_floating_point() or tensor.is_complex()):
            raise _Corrupt("an integer tensor claims to require gradients")
        tensor.requires_grad_(True)
    return tensor


def _rebuild_parameter(data, requires_grad, backward_hooks=None):
    if type(data) is not torch.Tensor:
        raise _Corrupt("a parameter wraps something other than a tensor")
    if type(requires_grad) is not bool:
        raise _Corrupt("a parameter has a malformed requires_grad flag")
    if requires_grad and not (data.is_floating_point() or data.is_complex()):
        raise _Corrupt("an integer parameter claims to require gradients")
    return torch.nn.Parameter(data.detach(), requires_grad)


def _rebuild_parameter_with_state(data, requires_grad, backward_hooks, state):
    # Python attributes set on a parameter object are dropped: nothing in a network needs them.
    return _rebuild_parameter(data, requires_grad, backward_hooks)


def _rebuild_from_type(func, new_type, args, state=None):
    """torch's wrapper for tensors carrying Python attributes; only Tensor/Parameter allowed."""
    rebuilders = (
        _rebuild_tensor, _rebuild_tensor_v2, _rebuild_tensor_v3, _rebuild_parameter, _rebuild_parameter_with_state
    )
    if func not in rebuilders:
        raise _Corrupt("a tensor is rebuilt by an unexpected function")
    if new_type not in (_TENSOR, _PARAMETER):
        raise _Corrupt("a tensor has an unexpected type")
    if not isinstance(args, tuple):
        raise _Corrupt("a tensor has malformed rebuild arguments")
    tensor = func(*args)
    if new_type is _PARAMETER and not isinstance(tensor, torch.nn.Parameter):
        tensor = torch.nn.Parameter(tensor.detach(), tensor.requires_grad)
    return tensor


def _codecs_encode(text, encoding="utf-8", errors="strict"):
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1") or errors != "strict":
        raise _Corrupt("_codecs.encode is only expected with latin1 text")
    return text.encode("latin1")


_NUMPY_KINDS = set("biufcUS")


def _numpy_dtype(spec, align=False, copy=True):
    if not isinstance(spec, str):
        raise _Corrupt("a numpy dtype has a malformed description")
    try:
        dtype = np.dtype(spec)
    except TypeError as exc:
        raise _Corrupt(f"a numpy dtype {spec!r} is not understood") from exc
    if dtype.kind not in _NUMPY_KINDS or dtype.fields is not None:
        raise _Corrupt(f"numpy dtype {spec!r} is not a plain number or string type")
    # Always a copy: the BUILD that follows must never touch numpy's shared dtype instances.
    return np.dtype(spec, bool(align), True)


def _numpy_scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype) or dtype.kind not in _NUMPY_KINDS or dtype.fields is not None:
        raise _Corrupt("a numpy scalar has an unexpected dtype")
    if not isinstance(data, bytes) or len(data) != dtype.itemsize:
        raise _Corrupt("a numpy scalar has malformed data")
    return np.frombuffer(data, dtype=dtype)[0].item()


def _numpy_reconstruct(subtype, shape, dtype_code):
    if subtype is not _NDARRAY or shape != (0,) or dtype_code not in (b"b", "b"):
        raise _Corrupt("a numpy array is pickled in an unexpected way")
    return np.ndarray((0,), np.uint8)


def _numpy_frombuffer(buffer, dtype, shape, order="C"):
    """How numpy pickles arrays at protocol 5 (``numpy._core.numeric._frombuffer``)."""
    if not isinstance(buffer, (bytes, bytearray)):
        raise _Corrupt("a numpy array has no in-band data")
    if not isinstance(dtype, np.dtype) or dtype.kind not in _NUMPY_KINDS or dtype.fields is not None:
        raise _Corrupt("a numpy array has an unexpected dtype")
    shape = _check_shape(shape, "numpy shape")
    if order not in ("C", "F") or len(buffer) != dtype.itemsize * int(np.prod(shape, dtype=object)):
        raise _Corrupt("a numpy array's data does not fit its shape")
    return np.frombuffer(bytes(buffer), dtype=dtype).reshape(shape, order=order).copy(order="K")


def _copyreg_reconstructor(cls, base, state):
    """Protocols 0 and 1 write dict subclasses (EasyDict) as copyreg._reconstructor calls."""
    if cls not in (dict, OrderedDict) or base is not dict or not isinstance(state, dict):
        raise _Corrupt("copyreg._reconstructor is only expected for EasyDict / OrderedDict")
    return cls(state)


def _builtin(kind: type) -> Callable:
    def build(*args):
        if len(args) > 1:
            raise _Corrupt(f"{kind.__name__}() called with too many arguments")
        return kind(*args)

    return build


def _torch_size(values=()):
    return torch.Size(_check_shape(values, "size"))


def _torch_device(spec, index=None):
    if not isinstance(spec, str) or (index is not None and type(index) is not int):
        raise _Corrupt("a torch.device is malformed")
    return torch.device(spec) if index is None else torch.device(spec, index)


class _PendingObject:
    """The argument of one reconstruct call, checked and turned into a PersistentObject later."""

    __slots__ = ("meta",)

    def __init__(self, meta):
        self.meta = meta

    def __setstate__(self, state):
        raise _Corrupt("a network object was given state after its reconstruct call")


def _reconstruct_persistent_obj(meta):
    if not isinstance(meta, dict):
        raise _Corrupt("a network object's metadata is not a dict")
    return _PendingObject(meta)


def _build_allow_list() -> dict[tuple[str, str], Any]:
    allowed: dict[tuple[str, str], Any] = {
        ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
        ("dnnlib.util", "EasyDict"): dict,
        ("dnnlib", "EasyDict"): dict,
        ("collections", "OrderedDict"): OrderedDict,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter_with_state,
        ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type,
        ("torch._tensor", "_rebuild_from_type"): _rebuild_from_type,
        ("torch.tensor", "_rebuild_from_type"): _rebuild_from_type,
        ("torch", "Tensor"): _TENSOR,
        ("torch._tensor", "Tensor"): _TENSOR,
        ("torch.tensor", "Tensor"): _TENSOR,
        ("torch.nn.parameter", "Parameter"): _PARAMETER,
        ("torch.nn", "Parameter"): _PARAMETER,
        ("torch.storage", "_load_from_bytes"): _decode_storage_blob,
        ("torch", "Size"): _torch_size,
        ("torch", "device"): _torch_device,
        ("_codecs", "encode"): _codecs_encode,
        ("numpy", "dtype"): _numpy_dtype,
        ("numpy", "ndarray"): _NDARRAY,
        ("copyreg", "_reconstructor"): _copyreg_reconstructor,
        ("builtins", "dict"): dict,  # the base class named by protocol 0/1 EasyDicts
        ("builtins", "set"): _builtin(set),
        ("builtins", "frozenset"): _builtin(frozenset),
        ("builtins", "bytearray"): _builtin(bytearray),
    }
    for numpy_core in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(numpy_core, "scalar")] = _numpy_scalar
        allowed[(numpy_core, "_reconstruct")] = _numpy_reconstruct
    for numpy_numeric in ("numpy.core.numeric", "numpy._core.numeric"):
        allowed[(numpy_numeric, "_frombuffer")] = _numpy_frombuffer
    for name, dtype in _TORCH_DTYPES.items():
        allowed[("torch", name)] = dtype
    return allowed


#: Every global a network pickle may name, as ``(module, name)``, and what it is mapped to.
#: None of the originals is imported or called, apart from ``collections.OrderedDict``, and the
#: ``torch`` dtypes, which are plain values.
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = _build_allow_list()


class _NetworkUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        module, name = _pickle_module_name(module, name)
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise _Refused(f"{module}.{name}") from None

    def persistent_load(self, pid):
        raise _Refused(
            "persistent_load",
            message="it holds a persistent-id reference, which a network pickle never uses",
        )


# ---------------------------------------------------------------------------------------------
# After unpickling: check everything and rebuild it from plain types


_SCALARS = (type(None), bool, int, float, complex, str, bytes)
_STATE_KEYS = ("_parameters", "_buffers", "_modules")


class _Sanitizer:
    def __init__(self) -> None:
        self.done: dict[int, Any] = {}
        self.active: set[int] = set()
        self.keep: list[Any] = []  # keep inputs alive so ids stay unique

    def __call__(self, value):
        if isinstance(value, _SCALARS) and type(value) in _SCALARS:
            return value
        key = id(value)
        if key in self.done:
            return self.done[key]
        if key in self.active:
            raise _Corrupt("the pickle holds a structure that contains itself")
        self.active.add(key)
        try:
            result = self._convert(value)
        finally:
            self.active.discard(key)
        self.done[key] = result
        self.keep.append(value)
        return result

    def _convert(self, value):
        kind = type(value)
        if kind is torch.Tensor or kind is torch.nn.Parameter:
            return self.tensor(value)
        if kind is _Storage:
            return value.as_tensor().clone()
        if kind is _PendingObject:
            return self.network(value.meta)
        if kind is torch.Size:
            return value
        if kind in (dict, OrderedDict):
            return {self.key(k): self(v) for k, v in value.items()}
        if kind is list:
            return [self(v) for v in value]
        if kind is tuple:
            return tuple(self(v) for v in value)
        if kind in (set, frozenset):
            return kind(self.key(v) for v in value)
        if kind is bytearray:
            return bytearray(value)
        if kind is np.ndarray:
            if value.dtype.kind not in _NUMPY_KINDS or value.dtype.fields is not None:
                raise _Corrupt("the pickle holds a numpy array of an unexpected dtype")
            return np.array(value, copy=True)
        if isinstance(value, (torch.dtype, torch.device)):
            return value
        if kind is np.dtype or isinstance(value, np.dtype):
            if value.kind not in _NUMPY_KINDS:
                raise _Corrupt("the pickle holds an unexpected numpy dtype")
            return value
        raise _Corrupt(f"the pickle holds an unexpected object of type {kind.__name__}")

    def key(self, value):
        if type(value) in _SCALARS:
            return value
        if type(value) is tuple:
            return tuple(self.key(v) for v in value)
        raise _Corrupt(f"the pickle uses a {type(value).__name__} as a dict key or set member")

    def tensor(self, value: torch.Tensor) -> torch.Tensor:
        fresh = value.detach()  # drops any hooks or attributes the pickle may have attached
        if type(value) is torch.nn.Parameter:
            return torch.nn.Parameter(fresh, value.requires_grad)
        if value.requires_grad:
            fresh.requires_grad_(True)
        return fresh

    def named(self, mapping, what: str, check: Callable[[Any], bool]) -> dict:
        if mapping is None:
            return {}
        if type(mapping) not in (dict, OrderedDict):
            raise _Corrupt(f"a network object's {what} is not a dict")
        out = {}
        for name, item in mapping.items():
            if not isinstance(name, str):
                raise _Corrupt(f"a network object's {what} has a non-string name")
            converted = self(item)
            if converted is None and what != "children":
                continue  # torch allows None placeholders; state_dict() skips them too
            if not check(converted):
                raise _Corrupt(f"a network object's {what} entry {name!r} is a {type(converted).__name__}")
            out[name] = converted
        return out

    def network(self, meta: dict) -> PersistentObject:
        if meta.get("type", "class") != "class":
            raise _Corrupt(f"a network object has persistence type {meta.get('type')!r}, not 'class'")
        class_name = meta.get("class_name")
        if not isinstance(class_name, str) or not class_name.isidentifier():
            raise _Corrupt("a network object has no valid class name")
        module_src = meta.get("module_src", "")
        if not isinstance(module_src, str):
            raise _Corrupt("a network object's module source is not text")
        module_name = meta.get("module_name", meta.get("module"))
        if module_name is not None and not isinstance(module_name, str):
            module_name = None
        state = meta.get("state")
        if state is None:
            state = {}
        if type(state) not in (dict, OrderedDict):
            raise _Corrupt(f"the state of {class_name} is not a dict")
        is_tensor = lambda t: isinstance(t, torch.Tensor)  # noqa: E731
        parameters = self.named(state.get("_parameters"), "parameters", is_tensor)
        buffers = self.named(state.get("_buffers"), "buffers", is_tensor)
        modules = self.named(
            state.get("_modules"), "children", lambda m: m is None or isinstance(m, PersistentObject)
        )
        init_args: Any = ()
        init_kwargs: Any = {}
        attributes: dict[str, Any] = {}
        for name, item in state.items():
            if not isinstance(name, str):
                raise _Corrupt(f"the state of {class_name} has a non-string attribute name")
            if name in _STATE_KEYS:
                continue
            if name in ("init_args", "_init_args"):
                init_args = self(item)
            elif name in ("init_kwargs", "_init_kwargs"):
                init_kwargs = self(item)
            else:
                attributes[name] = self(item)
        if isinstance(init_args, list):
            init_args = tuple(init_args)
        if not isinstance(init_args, tuple):
            raise _Corrupt(f"the init_args of {class_name} are not a tuple")
        if init_kwargs is None:
            init_kwargs = {}
        if not isinstance(init_kwargs, dict):
            raise _Corrupt(f"the init_kwargs of {class_name} are not a dict")
        version = meta.get("version")
        return PersistentObject(
            class_name=class_name,
            module_name=module_name,
            init_args=init_args,
            init_kwargs=init_kwargs,
            parameters=parameters,
            buffers=buffers,
            modules=modules,
            attributes=attributes,
            version=version if type(version) in _SCALARS else None,
            module_src=module_src,
        )


# ---------------------------------------------------------------------------------------------
# Entry points


def _unpickle(file, name: str):
    try:
        raw = _NetworkUnpickler(file).load()
        return _Sanitizer()(raw)
    except _Refused as exc:
        where = f" ({exc.where})" if exc.where else ""
        what = exc.message or (
            f"it references {exc.global_name}{where}, which a network pickle never needs"
        )
        raise UnsafePickleError(
            f"refusing to load {name}: {what}; nothing from the file was run",
            exc.global_name,
        ) from None
    except _Corrupt as exc:
        raise NetworkPickleError(f"cannot read network pickle {name}: {exc}") from None
    except EOFError:
        raise NetworkPickleError(f"cannot read network pickle {name}: it is empty or truncated") from None
    except MemoryError:
        raise NetworkPickleError(
            f"cannot read network pickle {name}: it asks for more memory than there is "
            "(it is corrupted, or too large for this machine)"
        ) from None
    except Exception as exc:  # malformed opcodes, bad arguments to allowed functions, ...
        detail = str(exc).splitlines()[0][:200] if str(exc) else ""
        reason = "it is truncated" if "truncated" in detail else "it is corrupted or not a pickle"
        raise NetworkPickleError(
            f"cannot read network pickle {name}: {reason} ({type(exc).__name__}: {detail})"
        ) from None


def _select(obj, key: str | None, name: str):
    if key is None:
        return obj
    if type(obj) is int and obj == _LEGACY_MAGIC:  # the first of the pickles torch.save wrote before torch 1.6
        raise NetworkPickleError(f"{name} is a legacy torch.save file, not an official network pickle, so it has no {key!r}")
    if not isinstance(obj, dict):
        raise NetworkPickleError(
            f"{name} does not hold a dict of networks (it holds a {type(obj).__name__}), "
            f"so it has no {key!r}"
        )
    if key not in obj:
        have = ", ".join(str(k) for k in obj) or "nothing"
        raise NetworkPickleError(f"{name} has no {key!r}; it holds: {have}")
    return obj[key]


def read_network_pickle(path: str | os.PathLike, key: str | None = "G_ema") -> PersistentObject | dict:
    """Read an official network pickle without running anything from it.

    Returns ``obj[key]`` (by default the ``G_ema`` network as a ``PersistentObject``), or the
    whole dict when ``key`` is None. Raises ``UnsafePickleError`` for files that reference
    anything outside ``ALLOWED_GLOBALS`` and ``NetworkPickleError`` for missing, truncated or
    malformed files and missing keys.
    """
    name = os.fspath(path)
    try:
        handle = open(name, "rb")
    except FileNotFoundError:
        raise NetworkPickleError(f"no network pickle at {name}") from None
    except OSError as exc:
        raise NetworkPickleError(f"cannot open network pickle {name}: {exc.strerror or exc}") from None
    with handle:
        if handle.read(4) == b"PK\x03\x04":  # read as a pickle, a zip archive is garbage opcodes
            raise NetworkPickleError(
                f"cannot read network pickle {name}: it is a zip archive (a torch.save checkpoint?), not an "
                "official network pickle; nothing from the file was run"
            )
        handle.seek(0)
        obj = _unpickle(handle, name)
    return _select(obj, key, name)


def loads_network_pickle(data: bytes, key: str | None = "G_ema", name: str = "<bytes>") -> PersistentObject | dict:
    """``read_network_pickle`` for a pickle already in memory; ``name`` is used in errors."""
    obj = _unpickle(io.BytesIO(data), name)
    return _select(obj, key, name)

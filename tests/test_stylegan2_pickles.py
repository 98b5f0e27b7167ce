"""The restricted reader of official StyleGAN2-ADA network pickles.

The pickles are written here, with the official structure, from our own tensors: stand-in
``torch_utils.persistence`` and ``dnnlib.util`` modules exist only while writing, and every
read happens with those names blocked in ``sys.modules``, which proves the reader never
imports them. Each network's ``module_src`` would create a marker file if it were ever run.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import os
import pickle
import subprocess
import sys
import types
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from facebench.generators.stylegan2.pickles import (
    ALLOWED_GLOBALS,
    NetworkPickleError,
    PersistentObject,
    UnsafePickleError,
    loads_network_pickle,
    read_network_pickle,
)
from facebench.harness.contracts.errors import FacebenchError

OFFICIAL_MODULES = ("torch_utils", "torch_utils.persistence", "dnnlib", "dnnlib.util")
PROTOCOLS = (0, 1, 2, 3, 4, 5)


# ---------------------------------------------------------------------------------------------
# Writing pickles with the official structure


@contextlib.contextmanager
def official_modules():
    """Stand-ins for the official helper modules, in sys.modules only inside this block.

    Outside it the names are absent, or blocked with None by ``no_official_modules``.
    """
    blocked = {name: sys.modules[name] for name in OFFICIAL_MODULES if name in sys.modules}
    assert all(value is None for value in blocked.values())

    def _reconstruct_persistent_obj(meta):
        raise AssertionError("the reader must never call the official reconstruct function")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"

    class EasyDict(dict):
        def __getattr__(self, name):
            try:
                return self[name]
            except KeyError:
                raise AttributeError(name) from None

        def __setattr__(self, name, value):
            self[name] = value

    EasyDict.__module__ = "dnnlib.util"
    EasyDict.__qualname__ = "EasyDict"

    torch_utils, persistence = types.ModuleType("torch_utils"), types.ModuleType("torch_utils.persistence")
    dnnlib, util = types.ModuleType("dnnlib"), types.ModuleType("dnnlib.util")
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    torch_utils.persistence = persistence
    util.EasyDict = EasyDict
    dnnlib.util, dnnlib.EasyDict = util, EasyDict
    modules = dict(zip(OFFICIAL_MODULES, (torch_utils, persistence, dnnlib, util)))
    sys.modules.update(modules)
    try:
        yield types.SimpleNamespace(reconstruct=_reconstruct_persistent_obj, EasyDict=EasyDict)
    finally:
        for name in OFFICIAL_MODULES:
            sys.modules.pop(name, None)
        sys.modules.update(blocked)


class Persistent:
    """Pickles the way an official persistent network object does: a reconstruct call."""

    def __init__(self, reconstruct, meta):
        self.reconstruct, self.meta = reconstruct, meta

    def __reduce__(self):
        return (self.reconstruct, (self.meta,))


class Reduce:
    """Pickles as an arbitrary call ``func(*args)``."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


def marker_source(marker) -> str:
    return (
        "import pathlib\n"
        f"pathlib.Path({str(marker)!r}).write_text('module_src was executed')\n"
        "raise SystemExit('module_src was executed')\n"
    )


class Block(nn.Module):
    def __init__(self, seed: int):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.weight = nn.Parameter(torch.randn(3, 5, generator=g))  # float32, requires_grad
        self.bias = nn.Parameter(torch.randn(3, generator=g), requires_grad=False)
        self.register_buffer("noise_const", torch.randn(4, 4, generator=g).half())  # float16
        self.register_buffer("transposed", self.weight.detach().t())  # non-contiguous view
        self.register_buffer("window", torch.arange(20.0).reshape(4, 5)[1:, ::2])  # offset+stride
        self.register_buffer("steps", torch.tensor([7, -2, 2**40]))  # int64
        self.register_buffer("scratch", torch.ones(2), persistent=False)
        self.conv_clamp = 256
        self.architecture = "skip"


class Synthesis(nn.Module):
    def __init__(self):
        super().__init__()
        self.const = nn.Parameter(torch.linspace(-1, 1, 32).reshape(2, 4, 4), requires_grad=False)
        taps = torch.tensor([1.0, 3, 3, 1])
        self.register_buffer("resample_filter", torch.outer(taps, taps) / 64)
        self.b4 = Block(1)
        self.b8 = Block(2)
        self.num_ws = np.int64(3)


class Mapping(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc0 = nn.Module()
        self.fc0.weight = nn.Parameter(torch.randn(8, 4, generator=torch.Generator().manual_seed(3)))
        self.fc0.bias = nn.Parameter(torch.zeros(8))
        self.register_buffer("w_avg", torch.arange(8.0))
        self.w_avg_beta = np.float32(0.995)
        self.in_size = np.array([4, 4])


class Gen(nn.Module):
    def __init__(self):
        super().__init__()
        self.synthesis = Synthesis()  # official order: synthesis first, then mapping
        self.mapping = Mapping()
        self.z_dim = 4
        self.scale = np.float32(1.0)
        self.depth = np.int64(3)


def to_persistent(module: nn.Module, official, source: str, path: str = "") -> Persistent:
    state = dict(module.__getstate__())
    state["_modules"] = OrderedDict(
        (name, to_persistent(child, official, source, f"{path}.{name}".strip(".")))
        for name, child in module._modules.items()
    )
    E = official.EasyDict
    if path == "":
        state["_init_args"] = ()
        state["_init_kwargs"] = {
            "z_dim": 4,
            "img_resolution": 8,
            "mapping_kwargs": E(num_layers=2, lr_multiplier=np.float32(0.01)),
            "synthesis_kwargs": E(
                channel_base=64, resample_filter=[1, 3, 3, 1], extra=E(nested=E(pair=(1, 2)))
            ),
        }
    elif path == "mapping":  # the spelling the brief describes, next to the official one
        state["init_args"] = (4, 0)
        state["init_kwargs"] = E(num_layers=2, activation="lrelu")
    else:
        state["_init_args"] = ()
        state["_init_kwargs"] = {}
    meta = dict(type="class", version=6, module_src=source, class_name=type(module).__name__, state=state)
    return Persistent(official.reconstruct, meta)


def dtype_zoo() -> dict[str, torch.Tensor]:
    return {
        "float16": torch.tensor([0.5, -2.0, 65504.0], dtype=torch.float16),
        "float32": torch.tensor([1.5, -3.25], dtype=torch.float32),
        "float64": torch.tensor([1e-300, 3.0], dtype=torch.float64),
        "bfloat16": torch.tensor([1.0, -0.5], dtype=torch.bfloat16),
        "int64": torch.tensor([-(2**62), 5]),
        "int32": torch.tensor([-7, 9], dtype=torch.int32),
        "uint8": torch.tensor([0, 255, 7], dtype=torch.uint8),
        "bool": torch.tensor([True, False]),
        "complex64": torch.tensor([1 + 2j], dtype=torch.complex64),
        "uint16": torch.tensor([1, 65535], dtype=torch.uint16),  # torch's _rebuild_tensor_v3 path
        "empty": torch.zeros(0, 3),
        "scalar": torch.tensor(2.5),
    }


def write_official(path, protocol: int, marker, extra: dict | None = None) -> Gen:
    """An official-shaped pickle of a fresh Gen; returns the torch module it came from."""
    gen = Gen()
    with official_modules() as official:
        source = marker_source(marker)
        data = {
            "G": to_persistent(Gen(), official, source),
            "D": to_persistent(Mapping(), official, source),
            "G_ema": to_persistent(gen, official, source),
            "augment_pipe": None,
            "training_set_kwargs": official.EasyDict(path="ffhq.zip", resolution=8, xflip=False),
        }
        data.update(extra or {})
        path.write_bytes(pickle.dumps(data, protocol=protocol))
    return gen


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """One official-shaped pickle per protocol, plus the torch modules they were made from."""
    folder = tmp_path_factory.mktemp("pickles")
    marker = folder / "MODULE_SRC_RAN"
    files = {}
    for protocol in PROTOCOLS:
        path = folder / f"network-p{protocol}.pkl"
        gen = write_official(path, protocol, marker, extra={"zoo": dtype_zoo()})
        files[protocol] = (path, gen)
    assert not any(name in sys.modules for name in OFFICIAL_MODULES)
    return types.SimpleNamespace(folder=folder, marker=marker, files=files)


@pytest.fixture(autouse=True)
def no_official_modules(monkeypatch):
    """Blocks the official module names, so any import of them by the reader fails."""
    for name in OFFICIAL_MODULES:
        assert name not in sys.modules
        monkeypatch.setitem(sys.modules, name, None)


def plain_types_only(value):
    """No EasyDict (or any other dict subclass) survives in init_kwargs."""
    if isinstance(value, dict):
        assert type(value) is dict
        for item in value.values():
            plain_types_only(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            plain_types_only(item)


# ---------------------------------------------------------------------------------------------
# Reading


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_state_dict_matches_the_original_module(written, protocol):
    path, gen = written.files[protocol]
    g = read_network_pickle(path)
    assert isinstance(g, PersistentObject) and g.class_name == "Gen"
    expected = gen.state_dict()
    got = g.state_dict()
    assert list(got) == list(expected)  # synthesis.* first; own params, buffers, then children
    assert "synthesis.b4.scratch" not in got  # non-persistent buffers stay out, as in torch
    for key, tensor in expected.items():
        assert got[key].dtype == tensor.dtype, key
        assert got[key].shape == tensor.shape, key
        assert torch.equal(got[key], tensor), key
    assert not written.marker.exists()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_structure_attributes_and_init_kwargs(written, protocol):
    path, gen = written.files[protocol]
    g = read_network_pickle(path)
    assert list(g.modules) == ["synthesis", "mapping"]
    assert g.module_name is None and g.version == 6
    assert g.module_src.startswith("import pathlib")  # kept as text only
    assert g.init_args == ()
    assert g.init_kwargs == {
        "z_dim": 4,
        "img_resolution": 8,
        "mapping_kwargs": {"num_layers": 2, "lr_multiplier": pytest.approx(0.01)},
        "synthesis_kwargs": {
            "channel_base": 64, "resample_filter": [1, 3, 3, 1], "extra": {"nested": {"pair": (1, 2)}}
        },
    }
    plain_types_only(g.init_kwargs)
    assert type(g.init_kwargs["mapping_kwargs"]["lr_multiplier"]) is float

    assert g.attributes["z_dim"] == 4
    assert g.attributes["scale"] == 1.0 and type(g.attributes["scale"]) is float
    assert g.attributes["depth"] == 3 and type(g.attributes["depth"]) is int
    assert g.attributes["training"] is True

    mapping = g.find("mapping")
    assert mapping.class_name == "Mapping"
    assert mapping.init_args == (4, 0) and mapping.init_kwargs == {"num_layers": 2, "activation": "lrelu"}
    assert type(mapping.attributes["w_avg_beta"]) is float
    assert mapping.attributes["w_avg_beta"] == pytest.approx(0.995)
    np.testing.assert_array_equal(mapping.attributes["in_size"], [4, 4])
    assert "init_kwargs" not in mapping.attributes and "_init_kwargs" not in g.attributes

    block = g.find("synthesis.b4")
    assert block.class_name == "Block" and block.modules == {}
    assert list(block.parameters) == ["weight", "bias"]
    assert list(block.buffers) == ["noise_const", "transposed", "window", "steps", "scratch"]
    assert block.attributes["conv_clamp"] == 256 and block.attributes["architecture"] == "skip"
    assert g.find("synthesis").attributes["num_ws"] == 3
    assert g.find("") is g
    paths = [name for name, _ in g.named_modules()]
    assert paths == ["", "synthesis", "synthesis.b4", "synthesis.b8", "mapping", "mapping.fc0"]


@pytest.mark.parametrize("protocol", (2, 4))
def test_parameters_views_and_dtypes(written, protocol):
    path, gen = written.files[protocol]
    block = read_network_pickle(path).find("synthesis.b4")
    weight, bias = block.parameters["weight"], block.parameters["bias"]
    assert isinstance(weight, nn.Parameter) and weight.requires_grad
    assert isinstance(bias, nn.Parameter) and not bias.requires_grad
    assert block.buffers["noise_const"].dtype == torch.float16
    assert block.buffers["steps"].dtype == torch.int64

    original = gen.synthesis.b4
    transposed = block.buffers["transposed"]
    assert not transposed.is_contiguous() and transposed.stride() == original.transposed.stride()
    window = block.buffers["window"]
    assert window.stride() == (5, 2) and window.storage_offset() == 5
    assert torch.equal(window, original.window)
    window.add_(1)  # views over freshly decoded, writable memory
    assert torch.equal(window, original.window + 1)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_every_storage_dtype(written, protocol):
    path, _ = written.files[protocol]
    zoo = read_network_pickle(path, key=None)["zoo"]
    for name, tensor in dtype_zoo().items():
        assert zoo[name].dtype == tensor.dtype, name
        assert zoo[name].shape == tensor.shape, name
        assert torch.equal(zoo[name], tensor), name


def test_keys_and_missing_key(written):
    path, _ = written.files[4]
    assert read_network_pickle(path, key="G").class_name == "Gen"
    assert read_network_pickle(path, key="D").class_name == "Mapping"
    everything = read_network_pickle(path, key=None)
    assert list(everything) == ["G", "D", "G_ema", "augment_pipe", "training_set_kwargs", "zoo"]
    assert everything["training_set_kwargs"] == {"path": "ffhq.zip", "resolution": 8, "xflip": False}
    assert type(everything["training_set_kwargs"]) is dict
    with pytest.raises(NetworkPickleError, match=r"no 'G_avg'.*G, D, G_ema, augment_pipe") as info:
        read_network_pickle(path, key="G_avg")
    assert path.name in str(info.value)


def test_find_reports_missing_children(written):
    g = read_network_pickle(written.files[4][0])
    with pytest.raises(LookupError, match=r"no 'b16' under synthesis.*b4, b8"):
        g.find("synthesis.b16")
    with pytest.raises(FacebenchError):
        g.find("nothing")


def test_shared_storage_stays_shared(tmp_path):
    """Two tensors over one memoised storage object come back as views of one decoded storage."""
    base = torch.arange(12.0)
    storage = torch.storage.TypedStorage(wrap_storage=base.untyped_storage(), dtype=base.dtype, _internal=True)
    rebuild = torch._utils._rebuild_tensor_v2
    first = Reduce(rebuild, storage, 0, (3, 4), (4, 1), False, OrderedDict())
    second = Reduce(rebuild, storage, 2, (2, 3), (1, 4), False, OrderedDict())
    path = tmp_path / "shared.pkl"
    path.write_bytes(pickle.dumps({"tensors": [first, second]}, protocol=4))
    a, b = read_network_pickle(path, key="tensors")
    assert torch.equal(a, base.reshape(3, 4))
    assert torch.equal(b, torch.as_strided(base, (2, 3), (1, 4), 2))
    assert a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()
    a[0, 2] = -1.0
    assert b[0, 0] == -1.0


def test_numpy_1_module_names(tmp_path, written):
    """numpy 1 pickles name numpy.core.multiarray, numpy 2 numpy._core.multiarray: both load."""
    data = written.files[2][0].read_bytes()
    new, old = b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n"
    if new not in data:
        new, old = old, new  # written by numpy 1: check the numpy 2 name instead
    assert data.count(new) > 0
    path = tmp_path / "other-numpy.pkl"
    path.write_bytes(data.replace(new, old))
    g = read_network_pickle(path)
    assert g.attributes["scale"] == 1.0 and g.attributes["depth"] == 3
    np.testing.assert_array_equal(g.find("mapping").attributes["in_size"], [4, 4])


def test_module_src_is_never_run(written):
    for path, _ in written.files.values():
        read_network_pickle(path, key=None)
    assert not written.marker.exists()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_other_values_torch_and_numpy_write(protocol):
    """Conjugate views, tensors with Python attributes (torch's _rebuild_from_type_v2), sizes,
    devices, dtypes, numpy arrays (protocol 5 uses numpy's _frombuffer), sets, numpy strings."""
    conj = torch.tensor([1 + 2j, 3 - 1j]).conj()
    tagged = torch.arange(3.0)
    tagged.note = "dropped"
    param = nn.Parameter(torch.ones(2))
    param.extra = 5
    values = {
        "conj": conj, "tagged": tagged, "param": param, "size": torch.Size([2, 3]), "device": torch.device("cpu"),
        "dtype": torch.float16, "array": np.arange(6, dtype=np.float32).reshape(2, 3).T, "set": {1, 2},
        "frozen": frozenset([3]), "np_dtype": np.dtype("f4"), "np_str": np.str_("abc"), "np_bool": np.bool_(True),
    }
    got = loads_network_pickle(pickle.dumps(values, protocol=protocol), key=None)
    assert torch.equal(got["conj"], conj) and got["conj"].is_conj()
    assert type(got["tagged"]) is torch.Tensor and torch.equal(got["tagged"], tagged)
    assert not hasattr(got["tagged"], "note")
    assert isinstance(got["param"], nn.Parameter) and not hasattr(got["param"], "extra")
    assert got["size"] == torch.Size([2, 3]) and got["device"] == torch.device("cpu")
    assert got["dtype"] is torch.float16
    np.testing.assert_array_equal(got["array"], values["array"])
    assert got["set"] == {1, 2} and got["frozen"] == frozenset([3]) and got["np_dtype"] == np.dtype("f4")
    assert got["np_str"] == "abc" and type(got["np_str"]) is str and got["np_bool"] is True


def test_loads_network_pickle_from_bytes(written):
    g = loads_network_pickle(written.files[4][0].read_bytes(), name="mem.pkl")
    assert g.class_name == "Gen"


# ---------------------------------------------------------------------------------------------
# Refusals


def evil_calls(marker):
    command = f"touch {marker}"
    return {
        "os.system": (f"{os.system.__module__}.system", Reduce(os.system, command)),
        "eval": ("builtins.eval", Reduce(builtins.eval, f"open({str(marker)!r}, 'w').close()")),
        "exec": ("builtins.exec", Reduce(builtins.exec, f"open({str(marker)!r}, 'w').close()")),
        "getattr": ("builtins.getattr", Reduce(builtins.getattr, "text", "upper")),
        "popen": ("subprocess.Popen", Reduce(subprocess.Popen, ["touch", str(marker)])),
        "torch.load": ("torch.serialization.load", Reduce(torch.load, str(marker))),
        "nn.Linear": ("torch.nn.modules.linear.Linear", nn.Linear(2, 2)),
    }


@pytest.mark.parametrize("case", ["os.system", "eval", "exec", "getattr", "popen", "torch.load", "nn.Linear"])
@pytest.mark.parametrize("protocol", (2, 4))
def test_forbidden_globals_are_refused(tmp_path, case, protocol):
    marker = tmp_path / "MARKER"
    name, evil = evil_calls(marker)[case]
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": evil}, protocol=protocol))
    with pytest.raises(UnsafePickleError) as info:
        read_network_pickle(path)
    assert info.value.global_name == name
    assert str(path) in str(info.value) and name in str(info.value)
    assert "nothing from the file was run" in str(info.value)
    assert isinstance(info.value, FacebenchError) and isinstance(info.value, ValueError)
    assert not marker.exists()


def test_forbidden_global_deep_inside_a_network_is_refused(tmp_path):
    marker = tmp_path / "MARKER"
    path = tmp_path / "deep.pkl"
    with official_modules() as official:
        gen = Gen()
        gen.synthesis.b4.hidden = Reduce(os.system, f"touch {marker}")
        data = {"G_ema": to_persistent(gen, official, marker_source(marker))}
        path.write_bytes(pickle.dumps(data, protocol=4))
    with pytest.raises(UnsafePickleError, match="system"):
        read_network_pickle(path)
    assert not marker.exists()


def legacy_blob(record: bytes, keys: list, raw: bytes = b"") -> bytes:
    """A blob in torch's legacy serialisation with a chosen storage record."""
    sizes = {"short": 2, "int": 4, "long": 8}
    sys_info = {"protocol_version": 1001, "little_endian": True, "type_sizes": sizes}
    head = b"".join(pickle.dumps(x, protocol=2) for x in (0x1950A86A20F9469CFC6C, 1001, sys_info))
    return head + record + pickle.dumps(keys, protocol=2) + raw


def test_forbidden_global_inside_a_storage_blob_is_refused(tmp_path):
    marker = tmp_path / "MARKER"
    blob = legacy_blob(pickle.dumps(Reduce(os.system, f"touch {marker}"), protocol=2), [])
    path = tmp_path / "inner.pkl"
    path.write_bytes(pickle.dumps({"G_ema": Reduce(torch.storage._load_from_bytes, blob)}, protocol=4))
    with pytest.raises(UnsafePickleError, match=r"system \(an inner tensor storage\)"):
        read_network_pickle(path)
    assert not marker.exists()


def test_storage_blob_naming_a_forbidden_storage_type_is_refused(tmp_path):
    class Pid:
        def __init__(self, storage_type):
            self.storage_type = storage_type

    class RecordPickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, Pid):
                return ("storage", obj.storage_type, "k", "cpu", 1, None)
            return None

    buffer = io.BytesIO()
    RecordPickler(buffer, protocol=2).dump(Pid(builtins.eval))
    blob = legacy_blob(buffer.getvalue(), ["k"], (1).to_bytes(8, "little") + b"\0" * 4)
    path = tmp_path / "inner-type.pkl"
    path.write_bytes(pickle.dumps({"G_ema": Reduce(torch.storage._load_from_bytes, blob)}, protocol=2))
    with pytest.raises(UnsafePickleError, match="builtins.eval"):
        read_network_pickle(path)


def test_hand_made_storage_blob_decodes(tmp_path):
    """Our own legacy blob (no torch.save): a HalfStorage of three elements."""

    class RecordPickler(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", torch.HalfStorage, "77", "cuda:0", 3, None) if obj == "STORAGE" else None

    buffer = io.BytesIO()
    RecordPickler(buffer, protocol=2).dump("STORAGE")
    values = np.array([1.0, -2.0, 0.5], dtype="<f2")
    blob = legacy_blob(buffer.getvalue(), ["77"], (3).to_bytes(8, "little") + values.tobytes())
    storage = Reduce(torch.storage._load_from_bytes, blob)
    tensor = Reduce(torch._utils._rebuild_tensor_v2, storage, 0, (3,), (1,), False, OrderedDict())
    path = tmp_path / "half.pkl"
    path.write_bytes(pickle.dumps({"t": tensor}, protocol=2))
    got = read_network_pickle(path, key="t")
    assert got.dtype == torch.float16 and got.tolist() == [1.0, -2.0, 0.5]


def test_allow_list_is_small():
    modules = {module for module, _ in ALLOWED_GLOBALS}
    assert modules <= {
        "torch_utils.persistence", "dnnlib.util", "dnnlib", "collections", "torch._utils", "torch._tensor",
        "torch.tensor", "torch", "torch.nn.parameter", "torch.nn", "torch.storage", "_codecs", "numpy",
        "numpy.core.multiarray", "numpy._core.multiarray", "numpy.core.numeric", "numpy._core.numeric",
        "copyreg", "builtins",
    }
    assert ("builtins", "eval") not in ALLOWED_GLOBALS and ("builtins", "getattr") not in ALLOWED_GLOBALS
    assert {name for module, name in ALLOWED_GLOBALS if module == "builtins"} == {"dict", "set", "frozenset", "bytearray"}


# ---------------------------------------------------------------------------------------------
# Broken files


def test_truncated_files_give_a_clear_error(tmp_path, written):
    data = written.files[4][0].read_bytes()
    path = tmp_path / "cut.pkl"
    for cut in (0, 1, 10, len(data) // 3, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:cut])
        with pytest.raises(NetworkPickleError) as info:
            read_network_pickle(path)
        assert str(path) in str(info.value)
        assert "truncated" in str(info.value) or "corrupted" in str(info.value)


def test_truncated_storage_blob(tmp_path):
    storage = torch.arange(5.0).untyped_storage()
    typed = torch.storage.TypedStorage(wrap_storage=storage, dtype=torch.float32, _internal=True)
    _, (blob,) = typed.__reduce__()
    path = tmp_path / "short-blob.pkl"
    path.write_bytes(pickle.dumps({"G_ema": Reduce(torch.storage._load_from_bytes, blob[:-3])}, protocol=4))
    with pytest.raises(NetworkPickleError, match="truncated"):
        read_network_pickle(path)


def test_tensor_reaching_past_its_storage(tmp_path):
    base = torch.arange(4.0)
    storage = torch.storage.TypedStorage(wrap_storage=base.untyped_storage(), dtype=base.dtype, _internal=True)
    path = tmp_path / "oob.pkl"
    evil = Reduce(torch._utils._rebuild_tensor_v2, storage, 2, (3,), (1,), False, OrderedDict())
    path.write_bytes(pickle.dumps({"G_ema": evil}, protocol=4))
    with pytest.raises(NetworkPickleError, match="past the end of its storage"):
        read_network_pickle(path)


def test_corrupted_bytes_never_escape_as_raw_errors(tmp_path, written):
    data = bytearray(written.files[2][0].read_bytes())
    rng = np.random.default_rng(0)
    path = tmp_path / "flipped.pkl"
    for position in rng.integers(0, len(data), size=40):
        broken = bytearray(data)
        broken[position] ^= 0xFF
        path.write_bytes(bytes(broken))
        try:
            read_network_pickle(path, key=None)
        except FacebenchError as exc:
            assert str(path) in str(exc)


def test_missing_empty_and_odd_files(tmp_path):
    with pytest.raises(NetworkPickleError, match="no network pickle at"):
        read_network_pickle(tmp_path / "absent.pkl")
    empty = tmp_path / "empty.pkl"
    empty.write_bytes(b"")
    with pytest.raises(NetworkPickleError, match="empty or truncated"):
        read_network_pickle(empty)
    text = tmp_path / "text.pkl"
    text.write_text("this is not a pickle at all")
    with pytest.raises(NetworkPickleError, match="text.pkl"):
        read_network_pickle(text)
    listing = tmp_path / "list.pkl"
    listing.write_bytes(pickle.dumps([1, 2], protocol=4))
    with pytest.raises(NetworkPickleError, match="does not hold a dict"):
        read_network_pickle(listing)
    assert read_network_pickle(listing, key=None) == [1, 2]

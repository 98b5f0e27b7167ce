"""Load StyleGAN2 and StyleGAN3 generators from official network pickles or our own format, and convert them.

The family is told from the network itself: a StyleGAN3 synthesis network has an ``input``
(Fourier features) where StyleGAN2 has ``b4``; see :func:`network_family`.

Our format is one safetensors file: the official ``G_ema`` state dict, with the constructor
arguments as JSON in its metadata (key ``facebench.stylegan2.config`` or
``facebench.stylegan3.config``). A safetensors file
without that metadata is read with a JSON config beside it (``<name>.json`` or ``config.json``
holding the arguments, or ``{"init_kwargs": ...}``), the layout of the test fixture.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .networks import Generator
from .pickles import PersistentObject, read_network_pickle
from ...harness.contracts.errors import FacebenchError
from ...harness.contracts.filemodes import as_if_created_plainly

if TYPE_CHECKING:
    from ..stylegan3.networks import Generator as StyleGAN3Generator

CONFIG_KEY = "facebench.stylegan2.config"
STYLEGAN3_CONFIG_KEY = "facebench.stylegan3.config"
FORMAT_KEY = "facebench.format"
FORMAT_NAME = "facebench-stylegan2-v1"
STYLEGAN3_FORMAT_NAME = "facebench-stylegan3-v1"
POSITIONAL = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs")
PICKLE_SUFFIXES = (".pkl", ".pickle")
FAMILY_LABELS = {"stylegan2": "StyleGAN2", "stylegan3": "StyleGAN3"}


class NetworkError(FacebenchError, ValueError):
    """A network file is missing, of an unknown kind, or does not hold a StyleGAN2/StyleGAN3 generator."""


def load_network(path: str | Path, device: str | torch.device = "cpu") -> Generator | StyleGAN3Generator:
    """The generator in ``path`` (an official ``.pkl``/``.pickle``, or ``.safetensors``), in eval mode on ``device``.

    StyleGAN2 and StyleGAN3 networks are both read; ``network_family(G)`` tells which one came
    back. Nothing from a pickle is executed: see :mod:`facebench.generators.stylegan2.pickles`.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise NetworkError(f"{path}: no such network file; give the path of a .pkl or .safetensors file")
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        kwargs, state = _from_pickle(path)
    elif suffix == ".safetensors":
        kwargs, state = _from_safetensors(path)
    else:
        raise NetworkError(f"{path}: unknown network format {path.suffix!r}; expected .pkl, .pickle or .safetensors")
    return build_generator(kwargs, state, str(path)).to(device).eval()


def network_family(network: Generator | StyleGAN3Generator) -> str:
    """``"stylegan2"`` or ``"stylegan3"``."""
    return "stylegan3" if isinstance(network, stylegan3_generator_class()) else "stylegan2"


def stylegan3_generator_class() -> type:
    """The StyleGAN3 ``Generator`` (imported on use: the stylegan3 package imports this module)."""
    from ..stylegan3.networks import Generator as StyleGAN3Generator

    return StyleGAN3Generator


def state_family(state: dict[str, torch.Tensor]) -> str:
    """The family of a state dict: StyleGAN3's synthesis starts with Fourier features (``synthesis.input``)."""
    return "stylegan3" if any(key.startswith("synthesis.input.") for key in state) else "stylegan2"


def build_generator(kwargs: dict[str, Any], state: dict[str, torch.Tensor], source: str = "network") -> Generator | StyleGAN3Generator:
    """A generator of the state's family made from constructor ``kwargs`` and filled from ``state`` (strictly)."""
    family = state_family(state)
    label = FAMILY_LABELS[family]
    try:
        generator = (stylegan3_generator_class() if family == "stylegan3" else Generator)(**kwargs)
    except (TypeError, ValueError) as exc:
        raise NetworkError(f"{source}: cannot build a {label} generator from its arguments: {exc}") from exc
    ours = generator.state_dict()
    missing = sorted(set(ours) - set(state))
    unexpected = sorted(set(state) - set(ours))
    wrong = sorted(k for k in set(ours) & set(state) if ours[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        details = "; ".join(
            f"{what}: {', '.join(keys[:5])}{' ...' if len(keys) > 5 else ''}"
            for what, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
            if keys
        )
        raise NetworkError(f"{source}: the weights do not fit a {label} generator built from its arguments ({details})")
    generator.load_state_dict({k: v.to(torch.float32) if v.is_floating_point() else v for k, v in state.items()})
    return generator


def save_network(generator: Generator | StyleGAN3Generator, path: str | Path) -> Path:
    """Write ``generator`` in our format: one safetensors file with its config in the metadata."""
    from safetensors.torch import save_file

    path = Path(path)
    state = {k: v.detach().to("cpu").contiguous() for k, v in generator.state_dict().items()}
    config = json.dumps(generator.init_kwargs, sort_keys=True)
    if network_family(generator) == "stylegan3":
        metadata = {FORMAT_KEY: STYLEGAN3_FORMAT_NAME, STYLEGAN3_CONFIG_KEY: config}
    else:
        metadata = {FORMAT_KEY: FORMAT_NAME, CONFIG_KEY: config}
    tmp = path.with_name(f".{path.name}.partial")
    save_file(state, str(tmp), metadata=metadata)
    as_if_created_plainly(tmp)  # safetensors writes 0600 whatever the umask
    tmp.replace(path)
    return path


def convert(network: str | Path, out: str | Path) -> Path:
    """Convert an official network pickle (or our format) to our safetensors format."""
    out = Path(out)
    if out.suffix != ".safetensors":
        raise NetworkError(f"{out}: the output must end in .safetensors")
    return save_network(load_network(network), out)


def file_digest(path: str | Path) -> str:
    """sha256 of a network file: the cache keys' own (:func:`facebench.harness.run.provenance.file_sha256`),
    so a run reads a large pickle once for its key and its records, not twice."""
    from ...harness.contracts.files import file_sha256

    return file_sha256(path)


def _from_safetensors(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            state = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError) as exc:
        raise NetworkError(f"{path}: not a readable safetensors file: {exc}") from exc
    for key in (CONFIG_KEY, STYLEGAN3_CONFIG_KEY):
        if key in metadata:
            return json.loads(metadata[key]), state
    for candidate in (path.with_suffix(".json"), path.parent / "config.json"):
        if candidate.is_file():
            config = json.loads(candidate.read_text())
            return config.get("init_kwargs", config), state
    raise NetworkError(
        f"{path}: no generator config, neither in the file's metadata nor in {path.with_suffix('.json').name} "
        "or config.json beside it; convert the network with `facebench stylegan2 convert`"
    )


def _from_pickle(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    network = read_network_pickle(path, key="G_ema")
    if not isinstance(network, PersistentObject):
        raise NetworkError(f"{path}: G_ema is not a network object")
    synthesis = network.modules.get("synthesis")
    if synthesis is None or "mapping" not in network.modules:
        raise NetworkError(f"{path}: G_ema ({network.class_name}) has no mapping and synthesis networks")
    if "input" in synthesis.modules:
        return stylegan3_kwargs(network, str(path)), network.state_dict()
    return resolved_kwargs(network, str(path)), network.state_dict()


def stylegan3_kwargs(network: PersistentObject, source: str = "network") -> dict[str, Any]:
    """Constructor arguments of a pickled StyleGAN3 generator: ``init_args`` by position, then
    ``init_kwargs`` (synthesis and layer options are flat there, as our constructor takes them)."""
    kwargs = dict(zip(POSITIONAL[:6], network.init_args))
    kwargs.update(network.init_kwargs)
    missing = [name for name in REQUIRED if name not in kwargs]
    if missing:
        raise NetworkError(
            f"{source}: the StyleGAN3 generator's init_kwargs lack {', '.join(missing)}; facebench infers missing "
            "constructor arguments for StyleGAN2 networks only (a StyleGAN3 network's filters depend on options "
            "its tensors do not show); re-save the network with its init_kwargs"
        )
    kwargs["mapping_kwargs"] = dict(kwargs.get("mapping_kwargs") or {})
    return kwargs


#: The constructor arguments without defaults.
REQUIRED = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")


def inferred_kwargs(network: PersistentObject, source: str = "network") -> dict[str, Any]:
    """Constructor arguments of a pickled StyleGAN2 generator read from its tensors and layers,
    for writers that stored no ``init_kwargs``.

    From tensor shapes: z_dim, c_dim, w_dim, img_resolution, img_channels, the mapping's
    num_layers / layer_features / embed_features, channel_base and channel_max (a pair that gives
    every block's width), architecture and use_noise. Shapes cannot tell the mapping's
    ``lr_multiplier``, ``conv_clamp`` or the activation: they are read from the attributes the
    official layers store (``bias_gain``, ``conv_clamp``, ``activation``), and a network without
    them is refused. ``w_avg_beta`` and ``num_fp16_res`` change no image in float32 and keep
    their defaults.
    """
    state = network.state_dict()
    mapping = network.find("mapping")
    synthesis = network.find("synthesis")
    fcs = sorted(int(name[2:]) for name in mapping.modules if name.startswith("fc") and name[2:].isdigit())
    resolutions = sorted(int(name[1:]) for name in synthesis.modules if name.startswith("b") and name[1:].isdigit())
    if not fcs or not resolutions or "synthesis.b4.conv1.affine.weight" not in state:
        raise NetworkError(f"{source}: the generator has no init_kwargs and not the layers of a StyleGAN2 generator")
    top = resolutions[-1]
    c_dim = state["mapping.embed.weight"].shape[1] if "mapping.embed.weight" in state else 0
    embed_features = state["mapping.embed.weight"].shape[0] if c_dim else 0
    widths = {r: state[f"synthesis.b{r}.conv1.weight"].shape[0] for r in resolutions}
    channel_base, channel_max = _channel_budget(widths, source)
    mapping_kwargs = {"num_layers": len(fcs), "layer_features": state["mapping.fc0.weight"].shape[0]}
    if c_dim:
        mapping_kwargs["embed_features"] = embed_features
    not_stored = []
    lr_multiplier = mapping.find("fc0").attributes.get("bias_gain")
    if lr_multiplier is None:
        not_stored.append("the mapping's lr_multiplier (fc0.bias_gain)")
    else:
        mapping_kwargs["lr_multiplier"] = lr_multiplier
    conv1 = synthesis.find(f"b{top}.conv1")
    for name in ("conv_clamp", "activation"):
        if name not in conv1.attributes:
            not_stored.append(f"{name} (b{top}.conv1.{name})")
    if not_stored:
        raise NetworkError(
            f"{source}: the generator has no init_kwargs, and its tensors do not determine "
            f"{' or '.join(not_stored)}, which its layers do not store either; re-save the network with its init_kwargs"
        )
    non_last_rgb = any(f"synthesis.b{r}.torgb.weight" in state for r in resolutions[:-1])
    architecture = "resnet" if any(".skip.weight" in key for key in state) else "skip" if non_last_rgb else "orig"
    return {
        "z_dim": state["mapping.fc0.weight"].shape[1] - embed_features,
        "c_dim": c_dim,
        "w_dim": state["synthesis.b4.conv1.affine.weight"].shape[1],
        "img_resolution": top,
        "img_channels": state[f"synthesis.b{top}.torgb.weight"].shape[0],
        "mapping_kwargs": mapping_kwargs,
        "synthesis_kwargs": {"channel_base": channel_base, "channel_max": channel_max, "architecture": architecture,
                             "use_noise": f"synthesis.b{top}.conv1.noise_const" in state},
    }


def _channel_budget(widths: dict[int, int], source: str) -> tuple[int, int]:
    """A (channel_base, channel_max) pair with ``min(channel_base // r, channel_max) == widths[r]`` for every r."""
    channel_max = max(widths.values())
    below = [r for r in sorted(widths) if widths[r] < channel_max]
    channel_base = widths[below[0]] * below[0] if below else channel_max * max(widths)
    if any(min(channel_base // r, channel_max) != width for r, width in widths.items()):
        raise NetworkError(f"{source}: the generator has no init_kwargs, and its block widths "
                           f"{[widths[r] for r in sorted(widths)]} follow no channel_base / channel_max")
    return channel_base, channel_max


def resolved_kwargs(network: PersistentObject, source: str = "network") -> dict[str, Any]:
    """Constructor arguments of a pickled generator, with the per-layer settings it actually used.

    Writers differ in defaults and some leave options out of ``init_kwargs``; the attributes
    stored on the pickled layers (conv_clamp, architecture, use_fp16, use_noise, activation)
    are what the network ran with, so they win.
    """
    kwargs = dict(zip(POSITIONAL, network.init_args))
    kwargs.update(network.init_kwargs)
    if any(name not in kwargs for name in REQUIRED):
        inferred = inferred_kwargs(network, source)
        for name in ("mapping_kwargs", "synthesis_kwargs"):
            inferred[name].update(kwargs.pop(name, None) or {})
        kwargs = {**inferred, **kwargs}
    flat = {k: kwargs.pop(k) for k in list(kwargs) if k not in POSITIONAL}  # StyleGAN3-repo style
    synthesis_kwargs = {**dict(kwargs.get("synthesis_kwargs") or {}), **flat}
    mapping_kwargs = dict(kwargs.get("mapping_kwargs") or {})
    synthesis = network.find("synthesis")
    blocks = sorted(
        ((int(name[1:]), block) for name, block in synthesis.modules.items()
         if block is not None and name.startswith("b") and name[1:].isdigit()),
        key=lambda item: item[0],
    )
    if blocks:
        last = blocks[-1][1]
        layer = last.modules.get("conv1")
        attributes = layer.attributes if layer is not None else {}
        if "conv_clamp" in attributes:
            synthesis_kwargs["conv_clamp"] = attributes["conv_clamp"]
        for key in ("use_noise", "activation"):
            if key in attributes:
                synthesis_kwargs[key] = attributes[key]
        if "architecture" in last.attributes:
            synthesis_kwargs["architecture"] = last.attributes["architecture"]
        if any("use_fp16" in block.attributes for _, block in blocks):
            synthesis_kwargs["num_fp16_res"] = sum(bool(block.attributes.get("use_fp16")) for _, block in blocks)
    mapping = network.find("mapping")
    if "w_avg_beta" in mapping.attributes:
        mapping_kwargs["w_avg_beta"] = mapping.attributes["w_avg_beta"]
    kwargs["mapping_kwargs"] = mapping_kwargs
    kwargs["synthesis_kwargs"] = synthesis_kwargs
    return kwargs

"""One door to every plug-in: built-ins by lazy "module:Attr" targets, others by entry points.

Third-party packages declare::

    [project.entry-points."facebench.detectors"]
    my_detector = "my_pkg.module:MyDetector"

A plug-in that fails to import is reported with its error and never breaks the others.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Literal

from facebench.harness.errors import FacebenchError

Kind = Literal["generator", "detector"]
KINDS: tuple[Kind, ...] = ("generator", "detector")

ENTRY_POINT_GROUPS: dict[str, str] = {
    "generator": "facebench.generators",
    "detector": "facebench.detectors",
}

BUILTINS: dict[str, dict[str, str]] = {
    "generator": {
        "parametric": "facebench.generators.parametric:ParametricGenerator",
        "stylegan2": "facebench.generators.stylegan2.generator:StyleGAN2Generator",
        "folder": "facebench.generators.folder:FolderGenerator",
        "diffusion": "facebench.generators.diffusion:DiffusionGenerator",
    },
    "detector": {
        "spectrum": "facebench.detectors.spectrum:SpectrumDetector",
        "dct": "facebench.detectors.dct:DCTDetector",
        "hf_falloff": "facebench.detectors.hf_falloff:HFFalloffDetector",
        "residual_period": "facebench.detectors.residual_period:ResidualPeriodDetector",
        "srm": "facebench.detectors.srm:SRMDetector",
        "command": "facebench.detectors.command:CommandDetector",
        "eye_position": "facebench.detectors.eyes:EyePositionDetector",
        "pupil": "facebench.detectors.eyes:PupilDetector",
        "corneal": "facebench.detectors.eyes:CornealDetector",
        "iris_colour": "facebench.detectors.eyes:IrisColourDetector",
        "bg_blur": "facebench.detectors.surroundings:BackgroundBlurDetector",
        "earring": "facebench.detectors.surroundings:EarringDetector",
        "cnn": "facebench.detectors.cnn:CNNDetector",
        "checkpoint": "facebench.detectors.checkpoint:CheckpointDetector",
    },
}


class PluginError(FacebenchError):
    """A plug-in could not be found, loaded or configured."""


@dataclass(frozen=True)
class PluginInfo:
    kind: Kind
    name: str
    target: str
    origin: str  # "builtin" or "entry point (<distribution>)"


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise PluginError(f"unknown plug-in kind {kind!r}; expected one of {', '.join(KINDS)}")


def available(kind: Kind) -> dict[str, PluginInfo]:
    """Every plug-in of ``kind`` by name, without importing any of them."""
    _check_kind(kind)
    found = {name: PluginInfo(kind, name, target, "builtin") for name, target in BUILTINS[kind].items()}
    for ep in entry_points(group=ENTRY_POINT_GROUPS[kind]):
        if ep.name in found:
            continue  # a built-in name is never shadowed by a third-party plug-in
        dist = ep.dist.name if ep.dist is not None else "unknown distribution"
        found[ep.name] = PluginInfo(kind, ep.name, ep.value, f"entry point ({dist})")
    return dict(sorted(found.items()))


def _import_target(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    obj = importlib.import_module(module_name)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


def load(kind: Kind, name: str) -> type:
    """The plug-in class registered as ``name``; a typo gets "did you mean"."""
    plugins = available(kind)
    if name not in plugins:
        close = difflib.get_close_matches(name, list(plugins), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; available: {', '.join(plugins) or 'none'}"
        raise PluginError(f"unknown {kind} {name!r}{hint}")
    info = plugins[name]
    try:
        return _import_target(info.target)
    except Exception as exc:  # a broken plug-in must never take the harness down
        raise PluginError(f"{kind} {name!r} ({info.target}) failed to import: {type(exc).__name__}: {exc}") from exc


def create(kind: Kind, name: str, **params: Any) -> Any:
    """An instance of plug-in ``name`` configured with keyword ``params``."""
    cls = load(kind, name)
    check_params(cls, params, f"{kind} {name!r}")
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise PluginError(f"{kind} {name!r}: {exc}") from exc


def check_params(cls: type, params: dict[str, Any], what: str) -> None:
    """Raise PluginError naming any parameter ``cls`` does not accept."""
    signature = inspect.signature(cls)
    accepted = [p.name for p in signature.parameters.values() if p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD]
    if any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
        return
    for key in params:
        if key not in accepted:
            close = difflib.get_close_matches(key, accepted, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; accepted: {', '.join(accepted) or 'none'}"
            raise PluginError(f"{what} has no parameter {key!r}{hint}")


@dataclass(frozen=True)
class PluginStatus:
    info: PluginInfo
    version: str | None
    error: str | None
    #: For detectors: what they read, and whether they learn from a train split.
    inputs: tuple[str, ...] = ()
    requires_fit: bool | None = None


def inspect_all() -> list[PluginStatus]:
    """Try to import every plug-in; report each one's version or import error."""
    statuses = []
    for kind in KINDS:
        for info in available(kind).values():
            try:
                cls = load(kind, info.name)
                statuses.append(PluginStatus(info, str(getattr(cls, "version", "?")), None,
                                             tuple(getattr(cls, "inputs", ())), getattr(cls, "requires_fit", None)))
            except PluginError as exc:
                statuses.append(PluginStatus(info, None, str(exc.__cause__ or exc)))
    return statuses

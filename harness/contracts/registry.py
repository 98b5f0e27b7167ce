"""One door to every plug-in of every kind: built-ins by lazy "module:Class" targets, others by entry points.

A kind is a family of plug-ins found by name: generators, detectors, artifacts, perturbations,
executors and eye localisers. A plug-in declares its name once, as its class's ``name``
attribute; the registry lists built-ins by target only and reads the name from the source.

Third-party packages declare (for the kinds with an entry-point group, :data:`ENTRY_POINT_GROUPS`)::

    [project.entry-points."facebench.detectors"]
    my_detector = "my_pkg.module:MyDetector"

A plug-in that fails to import is reported with its error and never breaks the others.
An entry point with a built-in's name is never used; :func:`shadowed` lists such entry points
so that the CLI can say so.

Listing needs no import: a built-in's class attributes (name, version, inputs, targets, ...) are
read from its source (:func:`static_attributes`), so ``facebench list`` never loads torch.
"""

from __future__ import annotations

import ast
import difflib
import functools
import importlib
import importlib.util
import inspect
import os
import types
import typing
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Literal

from .errors import EXIT_USAGE, FacebenchError, UsageError

Kind = Literal["generator", "detector", "artifact", "perturbation", "executor", "localiser"]
#: Every kind of plug-in, in the order ``facebench info`` looks a name up.
KINDS: tuple[Kind, ...] = ("generator", "detector", "artifact", "perturbation", "executor", "localiser")
#: The kinds a suite names and ``facebench list``'s first table shows: versioned, configured with ``-p``.
VERSIONED_KINDS: tuple[Kind, ...] = ("generator", "detector")

#: The kinds third parties can add to, and the entry-point group each is found under.
ENTRY_POINT_GROUPS: dict[Kind, str] = {
    "generator": "facebench.generators",
    "detector": "facebench.detectors",
    "executor": "facebench.executors",
}

#: Built-in plug-ins of each kind as "module:Class" targets, in the order they are listed; each class
#: declares its own ``name``.
BUILTINS: dict[str, tuple[str, ...]] = {
    "generator": (
        "facebench.generators.parametric:ParametricGenerator",
        "facebench.generators.stylegan2.generator:StyleGAN2Generator",
        "facebench.generators.stylegan3.generator:StyleGAN3Generator",
        "facebench.generators.folder:FolderGenerator",
        "facebench.generators.dataset.generator:DatasetGenerator",
        "facebench.generators.diffusion:DiffusionGenerator",
    ),
    "detector": (
        "facebench.detectors.spectrum:SpectrumDetector",
        "facebench.detectors.dct:DCTDetector",
        "facebench.detectors.hf_falloff:HFFalloffDetector",
        "facebench.detectors.residual_period:ResidualPeriodDetector",
        "facebench.detectors.srm:SRMDetector",
        "facebench.detectors.command:CommandDetector",
        "facebench.detectors.eyes:EyePositionDetector",
        "facebench.detectors.eyes:PupilDetector",
        "facebench.detectors.eyes:CornealDetector",
        "facebench.detectors.eyes:IrisColourDetector",
        "facebench.detectors.surroundings:BackgroundBlurDetector",
        "facebench.detectors.surroundings:EarringDetector",
        "facebench.detectors.cnn:CNNDetector",
        "facebench.detectors.checkpoint:CheckpointDetector",
        "facebench.detectors.npr:NPRDetector",
        "facebench.detectors.cnndetection:CNNDetectionDetector",
        "facebench.detectors.univfd:UnivFDDetector",
        "facebench.detectors.rine:RINEDetector",
        "facebench.detectors.patchcraft:PatchCraftDetector",
        "facebench.detectors.fusing:FusingDetector",
    ),
    "artifact": (
        "facebench.generators.artifacts.frequency:UpsamplingArtifact",
        "facebench.generators.artifacts.frequency:HFSmoothArtifact",
        "facebench.generators.artifacts.frequency:HFExcessArtifact",
        "facebench.generators.artifacts.frequency:PeriodicArtifact",
        "facebench.generators.artifacts.geometry:EyesFixedArtifact",
        "facebench.generators.artifacts.sensor:MissingCameraNoiseArtifact",
        "facebench.generators.artifacts.sensor:FormatArtifact",
        "facebench.generators.artifacts.scene:IrregularPupilsArtifact",
        "facebench.generators.artifacts.scene:HighlightMismatchArtifact",
        "facebench.generators.artifacts.scene:IrisColorMismatchArtifact",
        "facebench.generators.artifacts.scene:EarringSingleArtifact",
        "facebench.generators.artifacts.surroundings:BackgroundBlurArtifact",
        "facebench.generators.artifacts.surroundings:HairBleedArtifact",
        "facebench.generators.artifacts.surroundings:BlobArtifact",
        "facebench.generators.artifacts.shortcuts:SizeArtifact",
    ),
    "perturbation": (
        "facebench.harness.run.perturb:JpegPerturbation",
        "facebench.harness.run.perturb:BlurPerturbation",
        "facebench.harness.run.perturb:ResizePerturbation",
        "facebench.harness.run.perturb:NoisePerturbation",
        "facebench.harness.run.perturb:CropPerturbation",
    ),
    "executor": (
        "facebench.harness.run.executors:LocalExecutor",
        "facebench.harness.run.ray_executor:RayExecutor",
    ),
    "localiser": (
        "facebench.detectors.localise:DlibLocaliser",
        "facebench.detectors.localise:OpenCVLocaliser",
        "facebench.detectors.localise:BuiltinLocaliser",
    ),
}


class PluginError(UsageError):
    """A plug-in could not be found, loaded or configured (exit code 2: nothing ran)."""


@dataclass(frozen=True)
class PluginInfo:
    kind: Kind
    name: str
    target: str
    origin: str  # "builtin" or "entry point (<distribution>)"


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise PluginError(f"unknown plug-in kind {kind!r}; expected one of {', '.join(KINDS)}")


def _entry_point_infos(kind: Kind) -> list[PluginInfo]:
    group = ENTRY_POINT_GROUPS.get(kind)
    if group is None:
        return []
    infos = []
    for ep in entry_points(group=group):
        dist = ep.dist.name if ep.dist is not None else "unknown distribution"
        infos.append(PluginInfo(kind, ep.name, ep.value, f"entry point ({dist})"))
    return infos


_declared_names: dict[str, str] = {}


def declared_name(target: str) -> str:
    """The ``name`` the class at ``target`` declares: read from its source where it can be, else imported.

    A target that cannot be read nor imported answers its class's name (not remembered), so that
    :func:`load` reports the import error under a name.
    """
    if target in _declared_names:
        return _declared_names[target]
    attributes = static_attributes(target)
    name = attributes.get("name") if attributes is not None else None
    if not isinstance(name, str):
        try:
            name = getattr(_import_target(target), "name", None)
        except Exception:  # noqa: BLE001 - reported by load()
            return target.rpartition(":")[2]
    if not isinstance(name, str):
        return target.rpartition(":")[2]
    _declared_names[target] = name
    return name


def _builtin_infos(kind: Kind) -> list[PluginInfo]:
    return [PluginInfo(kind, declared_name(target), target, "builtin") for target in BUILTINS[kind]]


def register(kind: Kind, target: str) -> str:
    """Add ``target`` ("module:Class") to the built-ins of ``kind`` for this process; its name is its
    class's ``name``, which must be new. Returns the name. (Tests and benchmarks use this; packages
    use entry points.)"""
    _check_kind(kind)
    name = declared_name(target)
    if target not in BUILTINS[kind]:
        if name in {info.name for info in _builtin_infos(kind)}:
            raise PluginError(f"a built-in {kind} is already named {name!r}; give {target} another name")
        BUILTINS[kind] = (*BUILTINS[kind], target)
    return name


def names(kind: Kind) -> list[str]:
    """Every plug-in name of ``kind``: built-ins in their listed order, then entry points."""
    _check_kind(kind)
    builtins = [info.name for info in _builtin_infos(kind)]
    return builtins + [info.name for info in _entry_point_infos(kind) if info.name not in builtins]


def available(kind: Kind) -> dict[str, PluginInfo]:
    """Every plug-in of ``kind`` by name (sorted), without importing any of them."""
    _check_kind(kind)
    found = {info.name: info for info in _builtin_infos(kind)}
    for info in _entry_point_infos(kind):
        if info.name not in found:  # a built-in name is never shadowed by a third-party plug-in
            found[info.name] = info
    return dict(sorted(found.items()))


def shadowed(kind: Kind, name: str | None = None) -> list[PluginInfo]:
    """Entry points of ``kind`` (named ``name``, or all) that are ignored because a built-in has their name."""
    _check_kind(kind)
    builtins = {info.name for info in _builtin_infos(kind)}
    return [info for info in _entry_point_infos(kind)
            if info.name in builtins and (name is None or info.name == name)]


def shadow_message(info: PluginInfo) -> str:
    """One line saying that entry point ``info`` is ignored, and what to do."""
    return (f"the {info.kind} entry point {info.name!r} = {info.target!r} from {info.origin} is ignored: "
            f"a built-in {info.kind} has that name; rename the entry point in that package's pyproject.toml")


def _import_target(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    obj = importlib.import_module(module_name)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


def load(kind: Kind, name: str) -> type[Any]:
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
    params = check_params(cls, params, f"{kind} {name!r}")
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise PluginError(f"{kind} {name!r}: {exc}") from exc
    except FacebenchError as exc:
        exc.exit_code = EXIT_USAGE  # the plug-in refused its parameters (a missing program, say) before any work
        raise


@dataclass(frozen=True)
class ParamInfo:
    """One constructor parameter of a plug-in, for checking and for ``facebench info``."""

    name: str
    annotation: Any  # the declared type (a string where it could not be resolved), or inspect.Parameter.empty
    default: Any  # inspect.Parameter.empty when required
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty

    @property
    def type_text(self) -> str:
        """The declared type as written in Python, e.g. ``int`` or ``str | list[str]``."""
        return type_text(self.annotation)


def parameters(cls: type) -> list[ParamInfo]:
    """The keyword parameters of ``cls``'s constructor with their types, defaults and docstring lines."""
    hints = _type_hints(cls)
    docs = parameter_docs(cls.__doc__ or "")
    return [
        ParamInfo(p.name, hints.get(p.name, p.annotation), p.default, docs.get(p.name, ""))
        for p in inspect.signature(cls).parameters.values()
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]


def check_params(cls: type, params: dict[str, Any], what: str) -> dict[str, Any]:
    """Check ``params`` against ``cls``'s constructor before any work; return them converted.

    An unknown name, a missing required parameter or a value that does not fit the declared
    type is a :class:`PluginError` naming the parameter, the value and what is expected. A
    number given where a string is declared becomes a string (``-p path=2024`` is a folder).
    """
    signature = inspect.signature(cls)
    declared = {p.name: p for p in parameters(cls)}
    takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    checked = dict(params)
    for key, value in params.items():
        if key not in declared:
            if takes_any:
                continue
            close = difflib.get_close_matches(key, list(declared), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise PluginError(f"{what} has no parameter {key!r}{hint} (its parameters: {', '.join(declared) or 'none'})")
        param = declared[key]
        try:
            checked[key] = convert_value(value, param.annotation)
        except TypeError:
            default = "" if param.required else f" (default {param.default!r})"
            raise PluginError(f"{what}: parameter {key!r} got {value!r}; expected {describe_type(param.annotation)}"
                              f"{default}") from None
    for param in declared.values():
        if param.required and param.name not in params:
            doc = f": {param.doc.rstrip('.')}" if param.doc else ""
            raise PluginError(f"{what} needs parameter {param.name!r} ({describe_type(param.annotation)}{doc}); "
                              f"set it, e.g. -p {param.name}=VALUE")
    return checked


def convert_value(value: Any, annotation: Any) -> Any:
    """``value`` as the declared ``annotation`` wants it; TypeError if it cannot be.

    Unresolved or unusual annotations accept anything: the plug-in checks those itself.
    """
    if annotation in (inspect.Parameter.empty, Any, object) or isinstance(annotation, str):
        return value
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        # an exact fit first, so that "12" stays a string where str | int is declared
        for arg in args:
            if _fits(value, arg):
                return value
        for arg in args:
            if arg is not type(None):
                try:
                    return convert_value(value, arg)
                except TypeError:
                    pass
        raise TypeError(value)
    if origin is Literal:
        if value in args:
            return value
        raise TypeError(value)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise TypeError(value)
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise TypeError(value)
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        raise TypeError(value)
    if annotation is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise TypeError(value)
    if annotation in (Path, os.PathLike):
        if isinstance(value, (str, os.PathLike)):
            return value
        raise TypeError(value)
    if origin in (list, tuple) or annotation in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise TypeError(value)
        items = [a for a in args if a is not Ellipsis]
        if len(items) == 1:
            return type(value)(convert_value(v, items[0]) for v in value)
        return value
    if origin is dict or annotation is dict:
        if isinstance(value, dict):
            return value
        raise TypeError(value)
    if isinstance(annotation, type) and not isinstance(value, annotation):
        raise TypeError(value)
    return value


def value_from_text(text: str, annotation: Any, default: Any = inspect.Parameter.empty) -> Any:
    """A command-line ``KEY=VALUE``'s text as the parameter wants it, before :func:`convert_value` checks it.

    Where the parameter takes a string or a path, the text as typed (``-p prompt=true`` is the word);
    otherwise its TOML value (``7``, ``0.5``, ``true``, ``[1, 2]``), or the text where it is no TOML
    value. Without an annotation, the default's type decides.
    """
    import tomllib

    if annotation is inspect.Parameter.empty and default not in (inspect.Parameter.empty, None):
        annotation = type(default)
    if _takes_text(annotation):
        return text
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # a bare word is a string
    if isinstance(value, int) and not isinstance(value, bool) and _takes_float(annotation):
        return float(value)  # -p rotate=10 is 10.0, as the option it replaces gave it
    return value


def _takes_float(annotation: Any) -> bool:
    if annotation is float:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return float in args and int not in args
    return False


def _takes_text(annotation: Any) -> bool:
    if annotation in (str, Path, os.PathLike):
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return bool(args) and all(_takes_text(a) for a in args)
    return False


def params_from_text(cls: type, texts: dict[str, str]) -> dict[str, Any]:
    """``{"steps": "20"}`` -> ``{"steps": 20}``, each text read as :func:`value_from_text` says for
    ``cls``'s constructor parameter of that name (an unknown name keeps its TOML value; check_params
    then names it)."""
    declared = {p.name: p for p in parameters(cls)}
    out = {}
    for key, text in texts.items():
        param = declared.get(key)
        out[key] = (value_from_text(text, param.annotation, param.default) if param is not None
                    else value_from_text(text, inspect.Parameter.empty))
    return out


def _fits(value: Any, annotation: Any) -> bool:
    if annotation is type(None):
        return value is None
    if isinstance(annotation, type) and typing.get_origin(annotation) is None:
        if annotation in (int, float) and isinstance(value, bool):
            return False
        return isinstance(value, annotation)
    return False


def describe_type(annotation: Any) -> str:
    """What a value of ``annotation`` is, in words: "an integer", "a list of strings"."""
    if annotation in (inspect.Parameter.empty, Any, object):
        return "any value"
    if isinstance(annotation, str):
        return annotation
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe_type(a) for a in args if a is not type(None))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    words = {bool: "true or false", int: "an integer", float: "a number", str: "a string", Path: "a path",
             os.PathLike: "a path", dict: "a table", list: "a list", tuple: "a list"}
    if annotation in words:
        return words[annotation]
    if origin in (list, tuple):
        items = [a for a in args if a is not Ellipsis]
        if len(items) == 1:
            return f"a list of {_plural(describe_type(items[0]))}"
        return "a list"
    if origin is dict:
        return "a table"
    return type_text(annotation)


def _plural(phrase: str) -> str:
    """"an integer" -> "integers"; other phrases unchanged."""
    for article in ("an ", "a "):
        if phrase.startswith(article) and " or " not in phrase:
            return phrase[len(article):] + "s"
    return phrase


def type_text(annotation: Any) -> str:
    """An annotation as written in Python source: ``int``, ``str | None``, ``list[str]``."""
    if annotation is inspect.Parameter.empty:
        return "-"
    if isinstance(annotation, str):
        return annotation
    if isinstance(annotation, type) and typing.get_origin(annotation) is None:
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _type_hints(cls: type[Any]) -> dict[str, Any]:
    """``cls.__init__``'s resolved annotations; where they cannot be resolved, the strings as written."""
    init = cls.__init__
    try:
        return typing.get_type_hints(init)
    except Exception:  # a name only imported under TYPE_CHECKING, say
        return dict(getattr(init, "__annotations__", {}))


def parameter_docs(docstring: str) -> dict[str, str]:
    """The one-line docs of a docstring's ``Parameters:`` section, by parameter name.

    Entries read ``name: text`` with continuation lines indented deeper (joined into one line).
    """
    docs: dict[str, str] = {}
    lines = inspect.cleandoc(docstring).splitlines()
    inside, indent, current = False, None, None
    for line in lines:
        stripped = line.strip()
        if stripped in ("Parameters:", "Args:", "Arguments:"):
            inside, indent, current = True, None, None
            continue
        if not inside:
            continue
        if not stripped:
            current = None
            continue
        depth = len(line) - len(line.lstrip())
        if indent is None:
            indent = depth
        if depth < indent or (depth == 0 and stripped.endswith(":")):
            inside = False
            continue
        name, sep, text = stripped.partition(":")
        if depth == indent and sep and name.isidentifier():
            current = name
            docs[name] = text.strip()
        elif current is not None:
            docs[current] = f"{docs[current]} {stripped}"
    return {name: text.replace("``", "") for name, text in docs.items()}


# --------------------------------------------------------------------------- reading sources without importing


def static_attributes(target: str) -> dict[str, Any] | None:
    """The literal class attributes (``version``, ``inputs``, ``requires_fit``, ...) and ``__doc__``
    of a ``"module:Class"`` target inside facebench, read from its source without importing it;
    attributes of base classes in facebench modules are included. None when the source is not found."""
    module_name, _, class_name = target.partition(":")
    tree = _parse_module(module_name)
    if tree is None or "." in class_name:
        return None
    return _base_attributes(module_name, tree, class_name, depth=-1)  # defined there, or imported into it


def _resolve_relative(module_name: str, level: int, name: str | None) -> str | None:
    """The absolute name of ``from <level dots><name> import ...`` written in module ``module_name``."""
    path = _module_file(module_name)
    if path is None:
        return None
    package = module_name.split(".") if path.name == "__init__.py" else module_name.split(".")[:-1]
    if level - 1 > len(package):
        return None
    base = package[: len(package) - (level - 1)]
    return ".".join(base + ([name] if name else []))


@functools.cache
def _module_file(module_name: str) -> Path | None:
    parts = module_name.split(".")
    if len(parts) < 2 or parts[0] != "facebench":
        return None
    # only the top package (facebench.harness, .generators, .detectors) is imported: its __init__ is light
    spec = importlib.util.find_spec(".".join(parts[:2]))
    if spec is None or not spec.submodule_search_locations:
        return None
    base = Path(list(spec.submodule_search_locations)[0]).joinpath(*parts[2:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@functools.cache
def _parse_module(module_name: str) -> ast.Module | None:
    path = _module_file(module_name)
    if path is None:
        return None
    try:
        return ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None


def _class_attributes(module_name: str, tree: ast.Module, class_name: str, depth: int) -> dict[str, Any] | None:
    node = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name), None)
    if node is None or depth > 5:
        return None
    attributes: dict[str, Any] = {}
    for base in node.bases:
        if isinstance(base, ast.Name):
            inherited = _base_attributes(module_name, tree, base.id, depth)
            if inherited:
                attributes.update({k: v for k, v in inherited.items() if k != "__doc__"})
    for statement in node.body:
        targets: list[ast.expr] = []
        if isinstance(statement, ast.Assign):
            targets, value = statement.targets, statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            targets, value = [statement.target], statement.value
        for target in targets:
            if isinstance(target, ast.Name):
                try:
                    attributes[target.id] = ast.literal_eval(value)
                except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                    attributes.pop(target.id, None)  # not a literal: unknown without importing
    attributes["__doc__"] = ast.get_docstring(node) or ""
    return attributes


def _base_attributes(module_name: str, tree: ast.Module, name: str, depth: int) -> dict[str, Any] | None:
    if any(isinstance(n, ast.ClassDef) and n.name == name for n in tree.body):
        return _class_attributes(module_name, tree, name, depth + 1)
    for statement in tree.body:
        if isinstance(statement, ast.ImportFrom) and (statement.module or statement.level):
            source = (statement.module if statement.level == 0
                      else _resolve_relative(module_name, statement.level, statement.module))
            for alias in statement.names:
                if source is not None and (alias.asname or alias.name) == name:
                    other = _parse_module(source)
                    return None if other is None else _class_attributes(source, other, alias.name, depth + 1)
    return None



@dataclass(frozen=True)
class PluginStatus:
    info: PluginInfo
    version: str | None
    error: str | None
    #: For detectors: what they read, and whether they learn from a train split.
    inputs: tuple[str, ...] = ()
    requires_fit: bool | None = None
    #: For detectors: the input policy spec its class declares (facebench.harness.contracts.input_policy).
    input_policy: str | None = None


def inspect_all(kinds: tuple[Kind, ...] = VERSIONED_KINDS) -> list[PluginStatus]:
    """Every plug-in's version, inputs and fitting, or its import error, for each of ``kinds``.

    Built-ins are read from their source without importing them (fast: no torch); entry
    points are imported, so a broken one shows its error.
    """
    statuses = []
    for kind in kinds:
        for info in available(kind).values():
            attributes = static_attributes(info.target) if info.origin == "builtin" else None
            if attributes is None or "version" not in attributes:
                try:
                    attributes = vars_of(load(kind, info.name))
                except PluginError as exc:
                    statuses.append(PluginStatus(info, None, str(exc.__cause__ or exc)))
                    continue
            policy = attributes.get("input_policy", "any") if kind == "detector" else None
            statuses.append(PluginStatus(info, str(attributes.get("version", "?")), None,
                                         tuple(attributes.get("inputs", ())), attributes.get("requires_fit"),
                                         None if policy is None else str(policy)))
    return statuses


def vars_of(cls: type) -> dict[str, Any]:
    """The attributes :func:`inspect_all` reports, of an imported plug-in class."""
    return {key: getattr(cls, key) for key in ("version", "inputs", "requires_fit", "score_range", "input_policy", "__doc__")
            if hasattr(cls, key)}


def attributes(kind: Kind, name: str) -> dict[str, Any]:
    """The class attributes of plug-in ``name`` that can be known: a built-in's literal attributes read
    from its source without importing it (``name``, ``version``, ``targets``, ``needs``, ...), else the
    imported class's public attributes."""
    info = available(kind).get(name)
    if info is None:
        load(kind, name)  # raises the "unknown ... did you mean" error
        raise AssertionError("unreachable")
    if info.origin == "builtin":
        read = static_attributes(info.target)
        if read is not None and "name" in read:
            return read
    cls = load(kind, name)
    return {key: getattr(cls, key) for key in dir(cls) if not key.startswith("_") or key == "__doc__"}


def targets(kind: Kind = "detector") -> dict[str, tuple[str, ...]]:
    """The artifacts each plug-in of ``kind`` declares it targets (its ``targets`` attribute), in
    :func:`names` order; plug-ins that declare none are left out. Built-ins are not imported."""
    plugins = available(kind)
    found = {}
    for name in names(kind):
        info = plugins[name]
        read = static_attributes(info.target) if info.origin == "builtin" else None
        if read is None or "name" not in read:
            try:
                read = {"targets": getattr(load(kind, name), "targets", ())}
            except PluginError:  # a broken third-party plug-in targets nothing
                continue
        if read.get("targets"):
            found[name] = tuple(read["targets"])
    return found

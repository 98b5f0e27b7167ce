"""Suites: TOML files naming generators, detectors and the split. Unknown keys are errors."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any, Mapping

from ..contracts.errors import UsageError

DEFAULT_SUITE = "default"


class SuiteError(UsageError):
    """A suite file is missing or malformed (exit code 2: nothing ran)."""


@dataclass(frozen=True)
class GeneratorSpec:
    name: str
    label: str
    count: int
    seed_start: int = 0
    batch_size: int = 32
    params: dict[str, Any] = field(default_factory=dict)
    #: Another source whose images join this corpus, e.g. real photos for a generator of fakes only.
    reals: "GeneratorSpec | None" = None


@dataclass(frozen=True)
class DetectorSpec:
    name: str
    label: str
    params: dict[str, Any] = field(default_factory=dict)
    #: Images per ``score`` call; None: the detector's own preference.
    batch_size: int | None = None


@dataclass(frozen=True)
class SplitSpec:
    """Pairs go to test (``test_fraction``); of the rest, ``calibration_fraction`` is held out of
    fitting to calibrate the decision threshold, and the remainder trains."""

    test_fraction: float = 0.5
    seed: int = 0
    calibration_fraction: float = 0.0


@dataclass(frozen=True)
class ProtocolSpec:
    #: Train (and calibrate) on each corpus, test on every corpus: the generalisation matrix.
    cross_generator: bool = False
    #: Perturbation spec strings (see facebench.harness.run.perturb); clean images are always scored.
    perturbations: tuple[str, ...] = ()
    #: Mean score shift and flip rate over counterfactual (real, fake) pairs, per artifact.
    sensitivity: bool = True


@dataclass(frozen=True)
class BootstrapSpec:
    resamples: int = 1000
    confidence: float = 0.95
    seed: int = 0


@dataclass(frozen=True)
class ThroughputSpec:
    """How speed is measured: a timing phase per (detector, corpus) after scoring, timm-style on
    the test split held in memory (``warmup`` untimed calls, then rounds of one ``score`` call
    each, at least ``rounds`` and more until ``min_seconds`` are timed; the figure is the median
    round, with its quartiles), and an optional batch-size sweep on ``images`` test images (empty
    ``batch_sizes``: no sweep). ``measure = false``: neither (no detector throughput rows)."""

    batch_sizes: tuple[int, ...] = ()
    warmup: int = 1
    rounds: int = 5
    images: int = 64
    measure: bool = True
    min_seconds: float = 0.2


#: Defaults for function parameters (the specs are frozen, so one shared instance is safe).
DEFAULT_BOOTSTRAP = BootstrapSpec()
DEFAULT_THROUGHPUT = ThroughputSpec()


@dataclass(frozen=True)
class Suite:
    name: str
    source: str
    generators: tuple[GeneratorSpec, ...]
    detectors: tuple[DetectorSpec, ...]
    split: SplitSpec = SplitSpec()
    description: str = ""
    protocols: ProtocolSpec = ProtocolSpec()
    bootstrap: BootstrapSpec = BootstrapSpec()
    throughput: ThroughputSpec = ThroughputSpec()


def _take(table: dict[str, Any], allowed: Mapping[str, type | tuple[type, ...]], where: str,
          required=()) -> dict[str, Any]:
    for key in table:
        if key not in allowed:
            raise SuiteError(f"{where}: unknown key {key!r}; allowed: {', '.join(allowed)}")
    for key in required:
        if key not in table:
            raise SuiteError(f"{where}: missing key {key!r}")
    for key, value in table.items():
        expected = allowed[key]
        if isinstance(value, bool) and expected in (int, float):
            raise SuiteError(f"{where}: {key!r} must be {expected.__name__}, got {value!r}")
        if not isinstance(value, expected):
            names = expected.__name__ if isinstance(expected, type) else " or ".join(t.__name__ for t in expected)
            raise SuiteError(f"{where}: {key!r} must be {names}, got {value!r}")
    return table


_GENERATOR_KEYS = {"name": str, "label": str, "count": int, "seed_start": int, "batch_size": int, "params": dict}


def _generator_spec(table: dict[str, Any], where: str, nested: bool = False) -> GeneratorSpec:
    allowed = dict(_GENERATOR_KEYS) if nested else {**_GENERATOR_KEYS, "reals": dict}
    if nested:
        del allowed["label"]
    _take(table, allowed, where, required=("name", "count"))
    for key in ("count", "batch_size"):
        if table.get(key, 1) < 1:
            raise SuiteError(f"{where}: {key!r} must be >= 1, got {table[key]}")
    if table.get("seed_start", 0) < 0:
        raise SuiteError(f"{where}: 'seed_start' must be >= 0, got {table['seed_start']}")
    fields = {"label": table["name"], **table}
    if "reals" in table:
        fields["reals"] = _generator_spec(table["reals"], f"{where} [reals]", nested=True)
    return GeneratorSpec(**fields)


def _unique_labels(specs, kind: str, source: str) -> None:
    labels = [s.label for s in specs]
    for label in labels:
        if labels.count(label) > 1:
            raise SuiteError(f"{source}: two {kind}s share the label {label!r}; give each a distinct 'label'")


def parse_suite(data: dict[str, Any], source: str) -> Suite:
    """A :class:`Suite` from parsed TOML; ``source`` names the file in errors."""
    _take(
        data,
        {"name": str, "description": str, "split": dict, "generators": list, "detectors": list,
         "protocols": dict, "bootstrap": dict, "throughput": dict},
        source,
        required=("generators", "detectors"),
    )
    split = SplitSpec(**_take(data.get("split", {}), {"test_fraction": (float, int), "seed": int,
                                                        "calibration_fraction": (float, int)}, f"{source} [split]"))
    if not 0 < split.test_fraction < 1:
        raise SuiteError(f"{source} [split]: test_fraction must be in (0, 1), got {split.test_fraction}")
    if not 0 <= split.calibration_fraction < 1:
        raise SuiteError(f"{source} [split]: calibration_fraction must be in [0, 1), got {split.calibration_fraction}")
    protocols = _protocols(data.get("protocols", {}), f"{source} [protocols]")
    bootstrap = BootstrapSpec(**_take(data.get("bootstrap", {}), {"resamples": int, "confidence": float, "seed": int},
                                      f"{source} [bootstrap]"))
    if bootstrap.resamples < 0 or not 0 < bootstrap.confidence < 1:
        raise SuiteError(f"{source} [bootstrap]: resamples must be >= 0 (0: no intervals) and confidence in (0, 1)")
    throughput = _throughput(data.get("throughput", {}), f"{source} [throughput]")
    generators = []
    for i, table in enumerate(data["generators"]):
        where = f"{source} generators[{i}]"
        if not isinstance(table, dict):
            raise SuiteError(f"{where}: must be a table")
        generators.append(_generator_spec(table, where))
    detectors = []
    for i, table in enumerate(data["detectors"]):
        where = f"{source} detectors[{i}]"
        if not isinstance(table, dict):
            raise SuiteError(f"{where}: must be a table")
        _take(table, {"name": str, "label": str, "params": dict, "batch_size": int}, where, required=("name",))
        if table.get("batch_size", 1) < 1:
            raise SuiteError(f"{where}: 'batch_size' must be >= 1, got {table['batch_size']}")
        detectors.append(DetectorSpec(**{"label": table["name"], **table}))
    if not generators or not detectors:
        raise SuiteError(f"{source}: a suite needs at least one generator and one detector")
    _unique_labels(generators, "generator", source)
    _unique_labels(detectors, "detector", source)
    return Suite(
        name=data.get("name", Path(source).stem),
        source=source,
        generators=tuple(generators),
        detectors=tuple(detectors),
        split=split,
        description=data.get("description", ""),
        protocols=protocols,
        bootstrap=bootstrap,
        throughput=throughput,
    )


def _protocols(table: dict[str, Any], where: str) -> ProtocolSpec:
    from ..contracts.perturbations import PerturbationError, parse_grid

    _take(table, {"cross_generator": bool, "perturbations": list, "sensitivity": bool}, where)
    specs = table.get("perturbations", [])
    if not all(isinstance(spec, str) for spec in specs):
        raise SuiteError(f"{where}: 'perturbations' must be a list of strings, got {specs!r}")
    try:
        names = tuple(p.name for p in parse_grid(specs)) if specs else ()
    except PerturbationError as exc:
        raise SuiteError(f"{where}: {exc}") from None
    return ProtocolSpec(table.get("cross_generator", False), tuple(n for n in names if n != "none"),
                        table.get("sensitivity", True))


def _throughput(table: dict[str, Any], where: str) -> ThroughputSpec:
    _take(table, {"batch_sizes": list, "warmup": int, "rounds": int, "images": int, "measure": bool,
                  "min_seconds": (float, int)}, where)
    sizes = table.get("batch_sizes", [])
    if not all(isinstance(b, int) and not isinstance(b, bool) and b >= 1 for b in sizes):
        raise SuiteError(f"{where}: 'batch_sizes' must be a list of integers >= 1, got {sizes!r}")
    for key, low in (("warmup", 0), ("rounds", 1), ("images", 1), ("min_seconds", 0)):
        if table.get(key, low) < low:
            raise SuiteError(f"{where}: {key!r} must be >= {low}, got {table[key]}")
    default = ThroughputSpec()
    return ThroughputSpec(tuple(sizes), table.get("warmup", default.warmup), table.get("rounds", default.rounds),
                          table.get("images", default.images), table.get("measure", default.measure),
                          float(table.get("min_seconds", default.min_seconds)))


def shipped_suites() -> list[str]:
    """The names of the suites shipped with facebench (``facebench run NAME``), sorted."""
    return sorted(entry.name.removesuffix(".toml") for entry in files("facebench.suites").iterdir()
                  if entry.name.endswith(".toml") and entry.is_file())


def load_suite(path_or_name: str | Path | None = None) -> Suite:
    """Load a suite file, or a suite shipped with facebench by name (default: "default").

    The argument is a file only if it is one: a folder named like a shipped suite (the
    repository's ``detectors/``, say) never hides that suite.
    """
    if path_or_name is None:
        path_or_name = DEFAULT_SUITE
    path = Path(path_or_name)
    if path.is_file():
        try:
            text, source = path.read_text(), str(path)
        except OSError as exc:
            raise SuiteError(f"{path}: unreadable: {exc}") from None
    else:
        shipped = files("facebench.suites") / f"{path_or_name}.toml"
        looks_like_a_name = path.suffix != ".toml" and len(path.parts) == 1
        if not looks_like_a_name or not shipped.is_file():
            what = "a folder, not a suite file" if path.is_dir() else "no such suite file"
            raise SuiteError(f"{path_or_name}: {what}, and no shipped suite has that name; "
                             f"pass a suite .toml or one of: {', '.join(shipped_suites())}")
        text, source = shipped.read_text(), f"{path_or_name}.toml (shipped)"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"{source}: invalid TOML: {exc}") from None
    return parse_suite(data, source)

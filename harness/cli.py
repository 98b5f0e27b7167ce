"""The ``facebench`` command line: thin wrappers around the runner, corpus and store."""

from __future__ import annotations

import functools
import inspect
import shlex
import sys
import tomllib
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from .contracts.version import __version__
from .contracts.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, FacebenchError, UsageError


def readable_metavar(param: Any, annotation: Any) -> str | None:
    """What a parameter's value is, in the help's words: GENERATOR, PATH, INTEGER, NUMBER, TEXT.

    ``annotation`` is the command function's type for the parameter; None for flags.
    """
    if param.param_type_name == "argument":
        return param.name.upper()
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return None
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, list) and len(args) == 1:
        annotation = args[0]
    return {Path: "PATH", int: "INTEGER", float: "NUMBER", str: "TEXT"}.get(annotation)


class ReadableGroup(TyperGroup):
    """A command group whose help reads as written.

    Markup is off (``rich_markup_mode=None``), so brackets such as ``facebench[ray]`` or
    ``[default: ...]`` print as typed; metavars name values (PATH, INTEGER) instead of typer's
    ``<path>`` and ``<list[str]>``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for command in self.commands.values():
            name_metavars(command)


def name_metavars(command: Any) -> None:
    """Give every parameter of ``command`` that has none a :func:`readable_metavar`."""
    callback = inspect.unwrap(command.callback) if getattr(command, "callback", None) else None
    try:
        hints = typing.get_type_hints(callback) if callback is not None else {}
    except Exception:  # an annotation that cannot be resolved: typer's own metavar stays
        hints = {}
    for param in getattr(command, "params", []):
        if param.metavar is None:
            param.metavar = readable_metavar(param, hints.get(param.name))
        if param.param_type_name == "argument" and hasattr(param, "display_type_rich"):
            # typer >= 0.20 writes "NAME <str>" in the arguments list; the name says enough
            param.display_type_rich = lambda ctx: None


app = typer.Typer(
    name="facebench",
    help="Controlled fake-face corpora and detector benchmarks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    cls=ReadableGroup,
)
corpus_app = typer.Typer(help="Inspect and check corpora.", no_args_is_help=True, rich_markup_mode=None,
                         cls=ReadableGroup)
app.add_typer(corpus_app, name="corpus")
stylegan2_app = typer.Typer(help="StyleGAN2 networks: convert official pickles to safetensors.", no_args_is_help=True,
                            rich_markup_mode=None, cls=ReadableGroup)
app.add_typer(stylegan2_app, name="stylegan2")
stylegan3_app = typer.Typer(help="StyleGAN3 networks: convert official pickles to safetensors.", no_args_is_help=True,
                            rich_markup_mode=None, cls=ReadableGroup)
app.add_typer(stylegan3_app, name="stylegan3")
dataset_app = typer.Typer(help="Datasets you have on disk: find their layout and subsets.", no_args_is_help=True,
                          rich_markup_mode=None, cls=ReadableGroup)
app.add_typer(dataset_app, name="dataset")

# Tables are wide; when stdout is a file or pipe, do not squeeze them to 80 columns.
stdout = Console(width=None if sys.stdout.isatty() else 120)
stderr = Console(stderr=True)
_state: dict[str, Any] = {"debug": False, "argv": None}

# The exit codes' rule lives in facebench.harness.contracts.errors; these names stay for existing callers.
USAGE_EXIT = EXIT_USAGE
FAILURE_EXIT = EXIT_FAILED

ResultsOption = Annotated[Path, typer.Option("--results", help="Folder for corpora, runs and leaderboard.md.")]
StoreOption = Annotated[
    Optional[Path], typer.Option("--store", help="SQLite results store [default: RESULTS/facebench.sqlite].")
]
ParamOption = Annotated[
    Optional[list[str]], typer.Option("--param", "-p", metavar="KEY=VALUE",
                                      help="Plug-in parameter KEY=VALUE (TOML value); repeatable; "
                                           "`facebench info NAME` lists them.")
]


def fail(message: str, code: int = FAILURE_EXIT) -> typer.Exit:
    stderr.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code)


def handle_errors(command: Callable) -> Callable:
    """Turn known errors into one line on stderr and the exit code of their kind (see
    :mod:`facebench.harness.contracts.errors`); Ctrl-C into one line and 130; --debug keeps the traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, typer.BadParameter):
            raise
        except KeyboardInterrupt:
            stderr.print(interrupted_line(command.__name__, kwargs), markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except FacebenchError as exc:
            if _state["debug"]:
                raise
            raise fail(str(exc), exc.exit_code) from None
        except Exception as exc:
            if _state["debug"]:
                raise
            raise fail(f"{type(exc).__name__}: {exc} (rerun with --debug for the traceback)") from None

    return wrapper


def interrupted_line(command: str, options: dict[str, Any]) -> str:
    """"interrupted: <what is kept>; resume with: <the same command>" for a command stopped by Ctrl-C."""
    results = options.get("results") or Path("results")
    kept = {
        "run": f"finished tasks are kept in {results / 'tasks'} and corpora in {results / 'corpora'}; "
               "nothing was stored for this run",
        "known_answer_matrix": f"finished tasks are kept in {results / 'tasks'}",
        "generate": "nothing was kept (the partial corpus was removed)",
        "detect": "nothing was stored",
    }.get(command, "nothing was written")
    argv = _state["argv"]
    again = shlex.join(["facebench", *argv]) if argv is not None else "the same command"
    verb = "resume" if command in ("run", "known_answer_matrix") else "start again"
    return f"interrupted: {kept}; {verb} with: {again}"


def warn_shadowed(kind: str, name: str) -> None:
    """Say so when an installed entry point named ``name`` is ignored because a built-in has that name."""
    from .contracts.registry import shadow_message, shadowed

    for info in shadowed(kind, name):  # type: ignore[arg-type]
        stderr.print(f"warning: {shadow_message(info)}", markup=False, highlight=False, soft_wrap=True)


def parse_params(items: list[str] | None, plugin: type | None = None) -> dict[str, Any]:
    """``["resolution=128", "artifacts=eyes_fixed"]`` -> ``{"resolution": 128, "artifacts": "eyes_fixed"}``.

    With the ``plugin`` class, each value is read as its constructor parameter's type says
    (:func:`facebench.harness.contracts.registry.value_from_text`): ``-p prompt=true`` stays the word.
    """
    from .contracts.registry import params_from_text

    texts: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--param")
        texts[key.strip()] = value
    if plugin is not None:
        return params_from_text(plugin, texts)
    params: dict[str, Any] = {}
    for key, value in texts.items():
        try:
            params[key] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            params[key] = value  # a bare word is a string
    return params


def _version(value: bool) -> None:
    if value:
        stdout.print(f"facebench {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    _state["debug"] = debug


@app.command("list")
@handle_errors
def list_plugins() -> None:
    """List generator and detector plug-ins, with import errors of broken ones.

    Built-ins are read without importing them; `facebench info NAME` shows one in full.
    """
    from .contracts.registry import ENTRY_POINT_GROUPS, attributes, inspect_all, names, shadow_message, shadowed

    table = Table(title="facebench plug-ins")
    for column in ("kind", "name", "version", "origin", "inputs", "input size", "fits", "status"):
        table.add_column(column)
    broken = 0
    for status in inspect_all():
        state = "ok" if status.error is None else f"[red]import failed: {status.error}[/red]"
        broken += status.error is not None
        fits = "-" if status.requires_fit is None else ("yes" if status.requires_fit else "no")
        table.add_row(status.info.kind, status.info.name, status.version or "-", status.info.origin,
                      ", ".join(status.inputs) or "-", _policy_words(status.input_policy, short=True), fits, state)
    stdout.print(table)
    artifacts = Table(title="artifacts (--artifacts NAME[:STRENGTH],...)")
    for column in ("name", "needs", "mask", "what it is"):
        artifacts.add_column(column)
    for name in names("artifact"):
        cls = attributes("artifact", name)  # read from the source: listing imports no artifact
        artifacts.add_row(name, ", ".join(cls.get("needs", ())) or "pixels", "yes" if cls.get("local") else "-",
                          cls.get("summary", ""))
    stdout.print(artifacts)
    if broken:
        stderr.print(f"{broken} plug-in(s) failed to import; the others work.")
    for kind in ENTRY_POINT_GROUPS:
        for info in shadowed(kind):
            stderr.print(f"warning: {shadow_message(info)}", markup=False, highlight=False, soft_wrap=True)


def _policy_words(spec: Any, short: bool = False) -> str:
    """A detector's input policy in words (``-`` for other plug-ins, ``spec`` itself when it does not parse)."""
    from .contracts.input_policy import InputPolicy, InputPolicyError

    if spec is None:
        return "-"
    try:
        policy = InputPolicy.parse(spec)
    except InputPolicyError:
        return f"{spec} (does not parse)"
    return policy.short() if short else f"{policy.describe()} [{policy}]; the runner applies it, no other resize"


@app.command()
@handle_errors
def info(
    name: Annotated[str, typer.Argument(help="A generator, detector, artifact or perturbation kind, e.g. folder, "
                                         "spectrum, upsampling, jpeg.")],
) -> None:
    """Show one plug-in in full: its parameters (type, default, one line each), inputs and needs."""
    from .contracts import registry
    from .contracts.perturbations import DEFAULT_GRID, describe_kinds

    artifacts = registry.names("artifact")
    found = False
    for kind in registry.VERSIONED_KINDS:
        if name in registry.available(kind):
            warn_shadowed(kind, name)
            cls = registry.load(kind, name)
            extra = {"inputs": ", ".join(getattr(cls, "inputs", ())) or "-"} if kind == "detector" else {}
            if kind == "detector":
                extra["learns"] = "yes (fits on the train split)" if getattr(cls, "requires_fit", False) else "no"
                extra["input size"] = _policy_words(getattr(cls, "input_policy", "any"))
            _print_plugin(kind, name, cls, registry.available(kind)[name].origin, extra)
            found = True
    if name in artifacts:
        cls = registry.load("artifact", name)
        extra = {"needs": ", ".join(cls.needs) or "pixels", "mask": "yes" if cls.local else "no",
                 "use": f"--artifacts {name}[KEY=VALUE;...]:STRENGTH (strength 0..1, default 1)"}
        _print_plugin("artifact", name, cls, "builtin", extra)
        found = True
    kinds = describe_kinds()
    if name in kinds:
        example = next(p for p in DEFAULT_GRID if p.startswith(f"{name}:"))
        chained = f"{example}+jpeg:75" if name != "jpeg" else f"{example}+blur:2"
        stdout.print(f"perturbation {name}: {name}:VALUE, VALUE: {kinds[name]}, e.g. {example}; steps join with '+', "
                     f"e.g. {chained} (suite [protocols] perturbations)", markup=False, highlight=False)
        found = True
    if not found:
        import difflib

        known = [*registry.available("generator"), *registry.available("detector"), *artifacts, *kinds]
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else "`facebench list` shows them all"
        raise UsageError(f"no generator, detector, artifact or perturbation is named {name!r}; {hint}")


def plugin_card(doc: str) -> str:
    """The "Card:" section of a plug-in's docstring (paper, input policy, weight files, score), indented, or ""."""
    sections = [part for part in doc.split("\n\n") if part.lstrip().startswith("Card:")]
    return "\n".join("  " + line.rstrip() for line in sections[0].replace("``", "").splitlines()) if sections else ""


def _print_plugin(kind: str, name: str, cls: type, origin: str, extra: dict[str, str]) -> None:
    from .contracts.registry import parameters

    doc = (inspect.getdoc(cls) or "").split("\n\n")[0].replace("\n", " ").replace("``", "")
    version = f", version {cls.version}" if hasattr(cls, "version") else ""
    stdout.print(f"{kind} {name} ({origin}{version})", markup=False, highlight=False)
    if doc:
        stdout.print(f"  {doc}", markup=False, highlight=False)
    card = plugin_card(inspect.getdoc(cls) or "")
    if card:
        stdout.print(card, markup=False, highlight=False, soft_wrap=True)
    for key, value in extra.items():
        stdout.print(f"  {key}: {value}", markup=False, highlight=False)
    params = parameters(cls)
    if not params:
        stdout.print("  parameters: none", markup=False)
        return
    table = Table(title=None, show_edge=False)
    for column in ("parameter", "type", "default", "what it is"):
        table.add_column(column, overflow="fold")
    for param in params:
        default = "required" if param.required else repr(param.default)
        table.add_row(param.name, param.type_text, default, param.doc or "-")
    stdout.print(table, markup=False)
    how = "-p NAME=VALUE" if kind in ("generator", "detector") else "[NAME=VALUE;...] after the name"
    stdout.print(f"  set them with {how} (TOML values) or in a suite's params table", markup=False, highlight=False)


@app.command("runs")
@handle_errors
def list_runs(
    results: ResultsOption = Path("results"),
    store: StoreOption = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Show at most this many, the newest.")] = 20,
) -> None:
    """List stored runs, newest first: id, suite, date, status, duration and commit.

    Pass an id to leaderboard --run, report, export or compare.
    """
    from .data.store import Store, run_summary

    db = Store(store or results / "facebench.sqlite")
    if not db.path.exists():
        raise UsageError(f"{db.path}: no results store here; run `facebench run` first or pass --results/--store")
    runs = db.runs()
    if not runs:
        stdout.print(f"{db.path}: no runs stored yet", markup=False)
        return
    table = Table(title=f"{len(runs)} run(s) in {db.path}" + (f", the newest {limit}" if len(runs) > limit else ""))
    for column in ("id", "suite", "date", "status", "duration", "commit"):
        table.add_column(column, no_wrap=column in ("id", "date"))
    for run in reversed(runs[-limit:]):
        row = run_summary(run)
        table.add_row(row["run_id"], row["suite"], row["date"], row["status"], row["duration"], row["commit"])
    stdout.print(table, markup=False)


@app.command()
@handle_errors
def generate(
    generator: Annotated[str, typer.Argument(help="Generator plug-in name, e.g. parametric.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the corpus to (must not exist).")],
    n: Annotated[int, typer.Option("--n", min=1, help="Number of seeds.")] = 100,
    seed_start: Annotated[int, typer.Option("--seed-start", min=0, help="First seed.")] = 0,
    artifacts: Annotated[
        Optional[str], typer.Option("--artifacts", help="Fakes per seed, e.g. 'eyes_fixed,upsampling:0.5'.")
    ] = None,
    param: ParamOption = None,
    batch_size: Annotated[
        Optional[int],
        typer.Option("--batch-size", min=1, help="Seeds per generator call (default 32); also the plug-in's batch_size where it has one."),
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing corpus at --out.")] = False,
) -> None:
    """Generate a corpus of real images and their fakes.

    The generator's own settings (a network file, truncation, a pipeline, steps, a device, ...)
    are -p KEY=VALUE; `facebench info GENERATOR` lists them.
    """
    from .contracts import registry
    from .run.corpora import generate_corpus
    from .run.progress import make_progress
    from .data.suite import GeneratorSpec

    warn_shadowed("generator", generator)
    cls = registry.load("generator", generator)
    params = parse_params(param, cls)
    if artifacts is not None:
        params["artifacts"] = artifacts
    if batch_size is not None and "batch_size" in inspect.signature(cls).parameters:
        params.setdefault("batch_size", batch_size)
    spec = GeneratorSpec(name=generator, label=out.name, count=n, seed_start=seed_start, batch_size=batch_size or 32,
                         params=params)
    source = registry.create("generator", generator, **params)
    check_seed_range(source, generator, n, seed_start)
    progress = make_progress()
    with progress:
        corpus, throughput = generate_corpus(spec, out, progress, overwrite=overwrite, generator=source)
    counts = corpus.meta["counts"]
    stdout.print(
        f"wrote {counts['images']} images ({counts['real']} real, {counts['fake']} fake) to {out} "
        f"at {throughput['images_per_s']:.1f} images/s; digest {corpus.digest[:16]}"
    )


def check_seed_range(generator: Any, name: str, n: int, seed_start: int) -> None:
    """Before any work: a generator with a fixed number of images (``count()``, e.g. a folder) must hold the seeds asked for."""
    count = getattr(generator, "count", None)
    if not callable(count):
        return
    available = int(count())
    if seed_start + n > available:
        explained = getattr(generator, "count_explained", None)
        why = f" ({explained()})" if callable(explained) else ""
        raise UsageError(f"generator {name!r} supplies {available} seeds (0..{available - 1}){why} and --n {n} "
                         f"--seed-start {seed_start} asks for seeds up to {seed_start + n - 1}; ask for at most that "
                         f"many, e.g. --n {max(available - seed_start, 1)} --seed-start {min(seed_start, available - 1)}")


@app.command()
@handle_errors
def detect(
    detector: Annotated[str, typer.Argument(help="Detector plug-in name, e.g. spectrum.")],
    corpus_path: Annotated[Path, typer.Argument(metavar="CORPUS", help="Corpus folder.")],
    param: ParamOption = None,
    test_fraction: Annotated[float, typer.Option("--test-fraction", min=0.01, max=0.99, help="Share of pairs held out for testing.")] = 0.5,
    split_seed: Annotated[int, typer.Option("--split-seed", help="Seed of the pair split.")] = 0,
    results: ResultsOption = Path("results"),
    store: StoreOption = None,
) -> None:
    """Fit a detector on a corpus's train split (if it learns), score the test split, store the figures."""
    from dataclasses import asdict

    from .contracts import registry
    from .data.corpus import Corpus
    from .report.text import build_leaderboard, print_leaderboard
    from .run.progress import make_progress
    from .run.runner import evaluate, now, run_record
    from .data.store import Store
    from .data.suite import DetectorSpec, SplitSpec
    from .run.timing import calibrate_machine

    warn_shadowed("detector", detector)
    cls = registry.load("detector", detector)
    params = registry.check_params(cls, parse_params(param, cls), f"detector {detector!r}")
    corpus = Corpus.open(corpus_path)
    label = detector
    if detector == "command":  # label it by the name the program announces in its ready line
        from ..detectors.command import announced_name

        try:
            label = announced_name(params) or detector
        except FacebenchError as exc:  # the program cannot start or speak the protocol: nothing ran yet
            raise UsageError(str(exc)) from None
    started = now()
    spec = DetectorSpec(name=detector, label=label, params=params)
    progress = make_progress()
    with progress:
        result = evaluate(corpus, spec, SplitSpec(test_fraction, split_seed), corpus_path.name, progress)
    warnings = [{"task": f"detect {label} on {corpus_path.name}", "message": w} for w in result.warnings]
    split = asdict(SplitSpec(test_fraction, split_seed))  # what compare checks runs share
    info = {"corpus": str(corpus_path), "split": split, "warnings": warnings,
            "calibration": calibrate_machine()}  # as a suite run records it, so compare can relate machines
    run = run_record(f"detect {label}", started, "ok", info)
    throughput = [{"kind": "detector", "name": label, **(result.throughput or {})}]
    Store(store or results / "facebench.sqlite").write_run(run, result.metrics, throughput)
    print_leaderboard(build_leaderboard(run, result.metrics, throughput), stdout)
    for warning in warnings:
        stderr.print(f"warning: {warning['task']}: {warning['message']}", markup=False, highlight=False, soft_wrap=True)


@app.command()
@handle_errors
def score(
    detector: Annotated[str, typer.Argument(help="A detector that needs no fit, e.g. npr.")],
    images: Annotated[list[Path], typer.Argument(metavar="IMAGE_OR_FOLDER...", help="Image files and folders of them.")],
    param: ParamOption = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Also write the scores to this .csv or .json file.")] = None,
) -> None:
    """Print each image's score and path (tab-separated), with no corpus to build; -o also writes CSV or JSON."""
    from .contracts import registry
    from .run.score_files import check_output, image_files, make_scorer, score_paths, write_scores

    warn_shadowed("detector", detector)
    check_output(output)
    files = image_files(images)
    params = registry.check_params(registry.load("detector", detector), parse_params(param), f"detector {detector!r}")
    rows = score_paths(make_scorer(detector, params), files)
    for row in rows:
        typer.echo(f"{row.score:.6f}\t{row.path}")  # tab-separated, unwrapped: for cut and sort
    if output is not None:
        write_scores(rows, output, detector, params)


def _shipped_suites() -> list[str]:
    from .data.suite import shipped_suites

    try:
        return shipped_suites()
    except (ModuleNotFoundError, OSError):  # a broken install: the help must still print
        return ["default"]


@app.command()
@handle_errors
def run(
    suite: Annotated[
        Optional[str], typer.Argument(help="Suite TOML file, or the name of a shipped suite: "
                                      f"{', '.join(_shipped_suites())} [default: default].")
    ] = None,
    results: ResultsOption = Path("results"),
    store: StoreOption = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars on stderr.")] = True,
    report: Annotated[bool, typer.Option("--report/--no-report", help="Also write the HTML report, results/report.html.")] = True,
    executor: Annotated[
        str, typer.Option("--executor", help="Where corpora are generated and detectors score: local or ray "
                          "(needs facebench[ray]; see docs/ray.md).")
    ] = "local",
    address: Annotated[
        Optional[str], typer.Option("--address", help="With --executor ray: 'auto' (the cluster this machine "
                                    "belongs to) or ray://HOST:10001 [default: a Ray runtime on this machine].")
    ] = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Ignore every cache: generate every corpus and measure every task again.")
    ] = False,
    fresh_detectors: Annotated[
        Optional[str], typer.Option("--fresh-detectors", metavar="NAME,...",
                                    help="Measure these detectors' tasks again (labels or plug-in names); reuse the rest.")
    ] = None,
    no_throughput: Annotated[
        bool, typer.Option("--no-throughput", help="Skip the timing phase and the batch-size sweep: no detector "
                           "throughput rows (as the suite's [throughput] measure = false).")
    ] = False,
) -> None:
    """Run a benchmark suite: build corpora, fit and score detectors, store and print the leaderboard."""
    from dataclasses import replace

    from .run.executors import get_executor
    from .report.text import build_leaderboard, print_leaderboard, write_markdown
    from .run.runner import fresh_detector_labels, run_suite
    from .data.suite import load_suite

    loaded = load_suite(suite)
    fresh_names = _split_names(fresh_detectors)
    fresh_detector_labels(loaded, fresh_names)  # an unknown name fails before any work
    for kind, specs in (("generator", loaded.generators), ("detector", loaded.detectors)):
        for name in dict.fromkeys(spec.name for spec in specs):
            warn_shadowed(kind, name)
    if no_throughput:
        loaded = replace(loaded, throughput=replace(loaded.throughput, measure=False))
    store_path = store or results / "facebench.sqlite"
    runner = get_executor(executor, address)
    try:
        result = run_suite(loaded, results, store_path, show_progress=progress, executor=runner, fresh=fresh,
                           fresh_detectors=fresh_names)
    finally:
        runner.close()
    board = build_leaderboard(result.run, result.metrics, result.throughput, result.errors)
    print_leaderboard(board, stdout)
    path = write_markdown(board, results / "leaderboard.md")
    if result.cached_tasks:
        stdout.print(f"reused {result.cached_tasks} of {result.task_count} tasks; their code, weights and inputs are unchanged",
                     markup=False, highlight=False, soft_wrap=True)
    if result.reused_corpora:
        stdout.print(f"corpora from the cache: {', '.join(result.reused_corpora)} ({len(result.reused_corpora)} of "
                     f"{len(loaded.generators)}); their generator images/s are from the run that built them",
                     markup=False, highlight=False, soft_wrap=True)
    for warning in result.warnings:
        stderr.print(f"warning: {warning['task']}: {warning['message']}", markup=False, highlight=False, soft_wrap=True)
    stdout.print(f"leaderboard written to {path}")
    if report:
        from .report.html import write_report

        try:  # the figures are stored already: a report that cannot be drawn must not fail the run
            html = write_report(result, results / "report.html", results_dir=results)
            stdout.print(f"HTML report written to {html}")
        except Exception as exc:  # noqa: BLE001
            stderr.print(f"warning: no HTML report: {exc}")
    if result.errors:
        raise fail(f"{len(result.errors)} task(s) failed; see above")


@app.command()
@handle_errors
def leaderboard(
    run_ref: Annotated[Optional[str], typer.Argument(
        metavar="RUN", help="A run id or 'latest' [default: the latest run], as `report` and `export` take it.")] = None,
    run_id: Annotated[Optional[str], typer.Option("--run", help="Run id [default: the latest run].")] = None,
    results: ResultsOption = Path("results"),
    store: StoreOption = None,
    markdown: Annotated[
        Optional[Path], typer.Option("--markdown", metavar="FILE", help="Also write the tables as Markdown to FILE.")
    ] = None,
    csv_dir: Annotated[
        Optional[Path],
        typer.Option("--csv", metavar="DIR", help="Also write DIR/leaderboard.csv (a line per metric) "
                     "and DIR/throughput.csv."),
    ] = None,
    json_file: Annotated[
        Optional[Path], typer.Option("--json", metavar="FILE", help="Also write the board as JSON to FILE (NaN: null).")
    ] = None,
    all_metrics: Annotated[
        bool, typer.Option("--all-metrics", help="Also show every metric per corpus and artifact.")
    ] = False,
    perturbation: Annotated[
        Optional[list[str]],
        typer.Option("--perturbation", metavar="NAME", help="Keep clean rows and those under perturbation NAME "
                     "(e.g. jpeg:75); repeatable; 'none' keeps clean rows only."),
    ] = None,
) -> None:
    """Print the leaderboard of a stored run.

    Tables: detection (best AUC first, 95% CIs), per artifact, cross-generator, robustness, sensitivity, throughput.

    --markdown, --csv and --json write the same board, for reading or for diffing runs.
    """
    from .report.text import (
        build_leaderboard, filter_perturbations, print_leaderboard, to_csv, to_json, write_markdown,
    )
    from .data.store import Store

    if run_ref and run_id and run_ref != run_id:
        raise UsageError(f"two runs given: {run_ref} and --run {run_id}; give one")
    wanted = run_ref or run_id
    db = Store(store or results / "facebench.sqlite")
    if not db.path.exists():
        raise UsageError(f"{db.path}: no results store here; run `facebench run` first or pass --store")
    chosen = db.run(None if wanted == "latest" else wanted)
    metrics = db.metrics(chosen["run_id"])
    if perturbation:
        metrics = filter_perturbations(metrics, perturbation)
    board = build_leaderboard(chosen, metrics, db.throughput(chosen["run_id"]), db.errors(chosen["run_id"]))
    print_leaderboard(board, stdout, all_metrics=all_metrics)
    if markdown is not None:
        write_markdown(board, markdown, all_metrics=all_metrics)
    if csv_dir is not None:
        to_csv(board, csv_dir)
    if json_file is not None:
        to_json(board, json_file)


@app.command()
@handle_errors
def compare(
    baseline: Annotated[
        str,
        typer.Argument(metavar="BASELINE", help="Baseline: a results .json, STORE.sqlite[:RUN_ID], or a run id / 'latest' in --results."),
    ],
    current: Annotated[str, typer.Argument(metavar="CURRENT", help="Current run, in the same forms.")],
    tolerance: Annotated[
        Optional[list[str]],
        typer.Option("--tolerance", "-t", metavar="METRIC=DROP", help="Largest tolerated worsening; repeatable; overrides or adds to "
                     "auc=0.02 ap=0.02 balanced_accuracy=0.03 tpr_at_fpr_1=0.05 eer=0.02."),
    ] = None,
    throughput_tolerance: Annotated[
        float, typer.Option("--throughput-tolerance", min=0.0, max=0.99, metavar="FRACTION",
                            help="Largest tolerated relative drop of a detector's median images/s; a drop beyond it fails only "
                                 "when the runs' timed rounds differ (Mann-Whitney U, p < 0.05).")
    ] = 0.2,
    no_throughput: Annotated[bool, typer.Option("--no-throughput", help="Do not compare throughput.")] = False,
    markdown_out: Annotated[
        Optional[Path], typer.Option("--markdown-out", metavar="FILE", help="Also write the Markdown summary to FILE.")
    ] = None,
    results: Annotated[
        Path, typer.Option("--results", metavar="DIR", help="Results folder whose store bare run ids refer to.")
    ] = Path("results"),
    every_row: Annotated[
        bool, typer.Option("--all", help="Also list every metric row that passed (they are counted otherwise).")
    ] = False,
) -> None:
    """Compare a run with a baseline (the CI gate): exit 1 when a metric or throughput regressed, 2 on bad input
    or when no metric row of the two runs is comparable (same corpus digest, detector, artifact, perturbation,
    train corpus and split).

    Prints a Markdown summary (failures, throughput, and a count of the metric rows that passed; --all
    lists them too); --markdown-out and $GITHUB_STEP_SUMMARY, when set, get the summary with every row.
    """
    import os

    from .report.compare import compare as compare_runs
    from .report.compare import parse_tolerances
    from .data.results import load_results

    try:
        tolerances = parse_tolerances(tolerance)
        base = load_results(baseline, results / "facebench.sqlite")
        new = load_results(current, results / "facebench.sqlite")
        comparison = compare_runs(base, new, tolerances, None if no_throughput else throughput_tolerance)
    except FacebenchError as exc:  # includes "nothing to compare" (no like-for-like metric row)
        if _state["debug"]:
            raise
        raise fail(str(exc), USAGE_EXIT) from None
    text = comparison.markdown()
    typer.echo(text if every_row else comparison.markdown(every_row=False))
    if markdown_out is not None:
        markdown_out.parent.mkdir(parents=True, exist_ok=True)
        markdown_out.write_text(text)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(text + "\n")
    if comparison.failed:
        raise typer.Exit(FAILURE_EXIT)


@app.command("speed-ab")
@handle_errors
def speed_ab(
    baseline_python: Annotated[
        Path, typer.Option("--baseline-python", metavar="PYTHON", help="Interpreter of the baseline build (e.g. a venv "
                           "with the base branch installed); it must hold a facebench with this speed-worker protocol.")
    ],
    suite: Annotated[
        Optional[str], typer.Argument(help="Suite TOML file, or the name of a shipped suite [default: default].")
    ] = None,
    current_python: Annotated[
        Optional[Path], typer.Option("--current-python", metavar="PYTHON", help="Interpreter of the current build "
                                     "[default: the one running this command].")
    ] = None,
    results: ResultsOption = Path("results"),
    tolerance: Annotated[
        float, typer.Option("--tolerance", min=0.0, max=0.99, metavar="FRACTION", help="Largest tolerated relative "
                            "drop of the median round ratio; a drop beyond it fails only when the paired rounds say "
                            "it is real (one-sided sign test of the rounds, p < 0.05).")
    ] = 0.2,
    rounds: Annotated[int, typer.Option("--rounds", min=1, help="Least paired rounds per row.")] = 15,
    min_seconds: Annotated[
        Optional[float], typer.Option("--min-seconds", min=0.0, help="More rounds until each build timed this long "
                                      "per row [default: the suite's throughput min_seconds].")
    ] = None,
    sessions: Annotated[
        int, typer.Option("--sessions", min=1, help="Pairs of fresh worker processes, one after the other, that share "
                          "the rounds: one process can run a few per cent faster or slower than its twin for its "
                          "whole life, and only other processes average that out.")
    ] = 3,
    markdown_out: Annotated[
        Optional[Path], typer.Option("--markdown-out", metavar="FILE", help="Also write the Markdown summary to FILE.")
    ] = None,
    json_out: Annotated[
        Optional[Path], typer.Option("--json-out", metavar="FILE", help="Also write every round of both builds to FILE.")
    ] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars on stderr.")] = True,
) -> None:
    """Time two builds of the suite's detectors side by side, call by call, and gate on a slowdown: exit 1 when a
    row got slower by more than the tolerance and significantly, 2 on bad input.

    Both builds fit and time their own detectors on the same corpora (built or reused in --results) in worker
    processes started by their interpreters; the rounds alternate which build goes first, so a machine whose
    speed drifts slows both alike. Use it where two stored runs differ by more than the change you gate on
    (shared CI machines): the README's "Speed" section.
    """
    import json
    import os
    from contextlib import nullcontext

    from .data.suite import load_suite
    from .report.speed_ab import judge, markdown
    from .run.ab_timing import this_python, suite_lanes, time_ab, worker_command
    from .run.progress import make_progress

    pythons = {"baseline": str(baseline_python), "current": str(current_python or this_python())}
    for side, python in pythons.items():
        if not (Path(python).is_file() and os.access(python, os.X_OK)):
            raise fail(f"--{side}-python {python}: no executable interpreter there", USAGE_EXIT)
    loaded = load_suite(suite)
    if not loaded.detectors or not loaded.generators:
        raise fail(f"suite {loaded.name!r} has no {'detectors' if not loaded.detectors else 'generators'} "
                   "to time on", USAGE_EXIT)
    bars = make_progress(progress)
    with bars if bars is not None else nullcontext():
        lanes = suite_lanes(loaded, results, bars)
        rows = time_ab(lanes, {side: worker_command(python) for side, python in pythons.items()}, rounds=rounds,
                       min_seconds=loaded.throughput.min_seconds if min_seconds is None else min_seconds, progress=bars,
                       sessions=sessions)
    verdicts = judge(rows, tolerance)
    text = markdown(verdicts, rows, tolerance, pythons)
    typer.echo(text)
    if markdown_out is not None:
        markdown_out.parent.mkdir(parents=True, exist_ok=True)
        markdown_out.write_text(text + "\n")
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps({"suite": loaded.name, "pythons": pythons, "tolerance": tolerance,
                                        "rows": [row.to_dict() for row in rows],
                                        "verdicts": [{**v.__dict__, "change": v.change} for v in verdicts]},
                                       indent=1, allow_nan=True))
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(text + "\n")
    if any(v.failed for v in verdicts):
        raise typer.Exit(FAILURE_EXIT)


@app.command()
@handle_errors
def export(
    run_ref: Annotated[str, typer.Argument(metavar="RUN", help="A run id, 'latest', or STORE.sqlite[:RUN_ID].")] = "latest",
    out: Annotated[Path, typer.Option("--out", "-o", help="JSON file to write.")] = Path("results.json"),
    results: Annotated[
        Path, typer.Option("--results", metavar="DIR", help="Results folder whose store bare run ids refer to.")
    ] = Path("results"),
) -> None:
    """Write a stored run (metrics with CIs, throughput, errors, per-image scores) as one JSON file,
    e.g. a baseline for `facebench compare`."""
    from .data.results import export_json, load_results

    loaded = load_results(run_ref, results / "facebench.sqlite")
    path = export_json(loaded, out)
    stdout.print(f"wrote run {loaded.run_id} ({len(loaded.metrics)} metric rows, {len(loaded.scores)} scores) to {path}")


@app.command()
@handle_errors
def report(
    run_ref: Annotated[
        str, typer.Argument(metavar="RUN", help="A run id, 'latest', STORE.sqlite[:RUN_ID], or a results .json.")
    ] = "latest",
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write.")] = Path("report.html"),
    results: Annotated[
        Path,
        typer.Option("--results", metavar="DIR", help="Results folder whose store bare run ids refer to (and whose corpora/ the images "
                     "come from when the run's folders moved)."),
    ] = Path("results"),
) -> None:
    """Write a stored run as one self-contained HTML page: sortable tables, plots, a gallery and each
    detector's most confident misses. It needs no network to open."""
    from .report.html import write_report
    from .data.results import load_results

    loaded = load_results(run_ref, results / "facebench.sqlite")
    path = write_report(loaded, out, results_dir=results)
    stdout.print(f"wrote report of run {loaded.run_id} to {path} ({path.stat().st_size / 1e6:.2f} MB)")


@app.command()
@handle_errors
def gallery(
    corpus_path: Annotated[Path, typer.Argument(metavar="CORPUS", help="Corpus folder.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG file to write.")] = Path("gallery.png"),
    pairs: Annotated[int, typer.Option("--pairs", min=1, help="Number of pairs (rows).")] = 8,
    tile: Annotated[int, typer.Option("--tile", min=16, help="Tile side in pixels.")] = 128,
) -> None:
    """Write a contact sheet of real/fake pairs, labelled with their artifacts, masks outlined."""
    from .data.corpus import Corpus
    from .report.gallery import contact_sheet

    sheet = contact_sheet(Corpus.open(corpus_path), pairs, tile)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    stdout.print(f"wrote {out} ({sheet.width}x{sheet.height})")


@app.command("matrix")
@handle_errors
def known_answer_matrix(
    count: Annotated[int, typer.Option("--count", min=4, help="Seeds per single-artifact corpus.")] = 80,
    resolution: Annotated[int, typer.Option("--resolution", min=64, help="Image side in pixels.")] = 256,
    detectors: Annotated[Optional[str], typer.Option("--detectors", help="Comma-separated; default: every cue detector.")] = None,
    artifacts: Annotated[Optional[str], typer.Option("--artifacts", help="Comma-separated; default: every artifact.")] = None,
    results: Annotated[Path, typer.Option("--results", help="Results folder (corpora cache, store).")] = Path("results"),
    out: Annotated[Optional[Path], typer.Option(
        "--out", help="Folder for matrix.md and matrix.png [default: RESULTS/matrix].")] = None,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Exit 1 on an unexpected cell or a target whose interval lies below its level "
        "(cells that cannot be judged at this size do not fail).")] = False,
) -> None:
    """Score every detector on every single-artifact parametric corpus: the known-answer matrix."""
    from .contracts.registry import names
    from .report import matrix as km
    from .run.runner import run_suite

    known = names("artifact")
    chosen_detectors = _split_names(detectors) or list(km.targets())
    chosen_artifacts = _split_names(artifacts) or known
    unknown = [a for a in chosen_artifacts if a not in known]
    if unknown:
        raise FacebenchError(f"unknown artifact(s) {', '.join(unknown)}; known: {', '.join(known)}")
    suite = km.matrix_suite(chosen_artifacts, chosen_detectors, count=count, resolution=resolution)
    result = run_suite(suite, results)
    for error in result.errors:
        stderr.print(f"error in {error['task']}: {error['message']}")
    table = km.build_matrix(result.metrics, chosen_detectors, chosen_artifacts, resolution)
    out = out if out is not None else results / "matrix"
    out.mkdir(parents=True, exist_ok=True)
    header = (f"Known-answer matrix: AUC and its 95% bootstrap interval on the test half of {count} seeds per "
              f"single-artifact corpus ({table.pairs} test pairs), {resolution} px "
              f"(`facebench matrix --count {count} --resolution {resolution}`).\n\n")
    (out / "matrix.md").write_text(header + km.markdown(table))
    km.heatmap(table).save(out / "matrix.png")
    stdout.print(km.rich_table(table))
    for line in km.legend(table, target_mark="underlined"):
        stdout.print(line, markup=False, highlight=False)
    undecided = km.undecided(table)
    if undecided:
        stdout.print(f"cannot judge at this size ({len(undecided)} cells; more seeds narrow the intervals): "
                     + "; ".join(undecided), markup=False, highlight=False)
    broken = km.violations(table)
    for line in broken:
        stderr.print(f"unexpected: {line}", markup=False, highlight=False)
    stdout.print(f"verdicts: {km.summary(table)}", markup=False, highlight=False)
    stdout.print(f"wrote {out / 'matrix.md'} and {out / 'matrix.png'}; {len(broken)} unexpected cell(s)", markup=False)
    if strict and (broken or result.errors):
        raise typer.Exit(1)


def _split_names(text: str | None) -> list[str]:
    return [name.strip() for name in (text or "").split(",") if name.strip()]


@stylegan2_app.command("convert")
@stylegan3_app.command("convert")
@handle_errors
def stylegan2_convert(
    network: Annotated[Path, typer.Argument(help="Official network pickle (.pkl), or a .safetensors network.")],
    out: Annotated[Path, typer.Argument(help="Output file (.safetensors).")],
) -> None:
    """Convert a network to facebench's format: safetensors with the config in its metadata.

    The pickle is read without running any code from it.
    """
    from ..generators.stylegan2.loading import convert, file_digest

    if out.exists():
        raise UsageError(f"{out} exists; choose another output path")
    written = convert(network, out)
    stdout.print(f"wrote {written} (sha256 {file_digest(written)[:16]})")


@corpus_app.command("verify")
@handle_errors
def corpus_verify(path: Annotated[Path, typer.Argument(help="Corpus folder.")]) -> None:
    """Re-hash every file of a corpus; report missing, corrupt and extra files."""
    from .data.corpus import verify

    report = verify(path)
    for kind, items in (("missing", report.missing), ("corrupt", report.corrupt), ("extra", report.extra)):
        for item in items:
            stdout.print(f"{kind}: {item}", markup=False)
    if not report.ok:
        raise fail(
            f"{path}: {len(report.missing)} missing, {len(report.corrupt)} corrupt, {len(report.extra)} extra "
            f"of {report.checked} files"
        )
    stdout.print(f"{path}: all {report.checked} files match the manifest")


@dataset_app.command("scan")
@handle_errors
def dataset_scan(
    path: Annotated[Path, typer.Argument(help="Dataset folder, .csv/.jsonl list or .parquet file.")],
    layout: Annotated[str, typer.Option("--layout", help="cnndetection, genimage, synthbuster, list or parquet "
                                        "[default: recognised].")] = "",
    resolution: Annotated[str, typer.Option("--resolution", help="Output side in pixels, or native (every image "
                                            "at its own size), in the suite.")] = "256",
    harmonise: Annotated[str, typer.Option("--harmonise", help="E.g. jpeg:95: re-encode both classes alike, in the suite.")] = "",
    split: Annotated[str, typer.Option("--split", help="GenImage: val, train or all.")] = "val",
    reals: Annotated[str, typer.Option("--reals", help="Synthbuster: the folder of real photos.")] = "",
) -> None:
    """Print the layout and subsets of a dataset as a suite, one corpus per subset:
    `facebench dataset scan PATH > suite.toml`, then `facebench run suite.toml`."""
    from ..generators.dataset import read_dataset
    from ..generators.dataset.suite import suite_text

    side: int | str = resolution.strip().lower()
    if side != "native":
        if not str(side).isdigit():
            raise UsageError(f"--resolution must be a number of pixels or native, got {resolution!r}")
        side = int(side)
    dataset = read_dataset(path, layout, split=split, reals=reals)
    params = {"resolution": side, "harmonise": harmonise, "split": split if dataset.layout == "genimage" else "",
              "reals": reals, "layout": layout}
    typer.echo(suite_text(dataset, {k: v for k, v in params.items() if v not in ("", None)}), nl=False)


def main() -> None:
    _state["argv"] = sys.argv[1:]  # for the "resume with" line after Ctrl-C
    app()


if __name__ == "__main__":
    main()

"""GPU figures in one call: prove facebench's CUDA paths and measure them, in at most 8 minutes.

    python benchmarks/gpu_check.py [--out DIR] [--budget SECONDS] [--parts tests,sg2_parity,...]

Parts, in this order, each with its own time budget (a part or a configuration that no longer
fits is skipped with one line):

- ``tests``: ``pytest -m gpu tests/test_gpu.py`` (CUDA paths of every torch-based generator and
  detector, timing's CUDA synchronisation, the out-of-memory back-off);
- ``sg2_parity``: StyleGAN2 at 256 and 1024 px with random weights: CUDA float32 images against
  CPU float32 ones (TF32 as torch leaves it, and TF32 off) and the float16 path's difference;
- ``sg2_speed``: StyleGAN2 ms/image at 256 and 1024 px, batch 1/8/32, eager (float16 path and
  float32), CUDA events;
- ``detectors``: cnn and checkpoint ResNet-50 (random weights) images/s at 224 px, batch
  1/32/128, float32 and float16/bfloat16 autocast, CUDA events, peak CUDA memory, and the
  harness's own timing beside it;
- ``oom``: the runner's out-of-memory back-off under a real cap
  (``torch.cuda.set_per_process_memory_fraction``), scores against an uncapped run;
- ``suite``: a small suite end to end with CPU and CUDA detectors side by side: store,
  leaderboard, HTML report;
- ``sg2_compiled``: StyleGAN2 with ``torch.compile`` (in a child process that is killed when its
  budget runs out), ms/image and compile seconds.

Without CUDA it runs the CPU-side parts (the tests, which skip; the CPU reference images; the
suite with CPU detectors) and reports each GPU part as skipped. ``--selfcheck`` runs every part
it can on the CPU at toy sizes, to test this script on a machine without a GPU.

Writes into ``--out`` (default: $OUT, else ./gpu_check_out): summary.md, results.json,
leaderboard.md, report.html, pytest.log and gpu_check.log. Needs no installed facebench: when
``import facebench`` does not load this checkout, the package folders are mapped onto the import
path as pyproject.toml maps them. Exit status: 0 when every check passed, 1 when one failed, 3
when the watchdog stopped the run at the end of its budget.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import traceback
import xml.etree.ElementTree as ElementTree
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
MAX_BUDGET_S = 480.0
#: Kept free at the end of the budget for writing the outputs.
RESERVE_S = 10.0
MB = 2**20
#: Temporary folders this process made, removed when it ends normally.
MADE: list[Path] = []

# --------------------------------------------------------------------------------------- imports


def facebench_on_path(root: Path = ROOT) -> str:
    """Make ``import facebench.*`` load this checkout; returns how it is loaded.

    An install of this checkout is used as it is. Otherwise a temporary folder gets a
    ``facebench`` namespace whose sub-packages link to the folders pyproject.toml's
    ``package-dir`` names (plus a dist-info so the version reads right); it goes first on
    ``sys.path`` and on ``PYTHONPATH`` (for the pytest child).
    """
    if _loads_from(root):
        return "installed from this checkout"
    config = tomllib.loads((root / "pyproject.toml").read_text())
    shim = Path(tempfile.mkdtemp(prefix="facebench-path-"))
    MADE.append(shim)
    package = shim / "facebench"
    package.mkdir()
    for name, folder in config["tool"]["setuptools"]["package-dir"].items():
        (package / name.split(".", 1)[1]).symlink_to(root / folder, target_is_directory=True)
    info = shim / f"facebench-{config['project']['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: facebench\nVersion: {config['project']['version']}\n")
    sys.path.insert(0, str(shim))
    os.environ["PYTHONPATH"] = os.pathsep.join([str(shim), *filter(None, [os.environ.get("PYTHONPATH")])])
    for name in [m for m in sys.modules if m == "facebench" or m.startswith("facebench.")]:
        del sys.modules[name]
    importlib.invalidate_caches()
    if not _loads_from(root):
        raise SystemExit(f"gpu_check: cannot make `import facebench` load {root}; "
                         "install it: pip install --no-deps --no-build-isolation -e .")
    return f"not installed: package folders mapped from {shim}"


def _loads_from(root: Path) -> bool:
    try:
        spec = importlib.util.find_spec("facebench.harness")
    except ImportError:
        return False
    return bool(spec and spec.origin and Path(spec.origin).resolve().is_relative_to(root.resolve()))


# --------------------------------------------------------------------------------------- results


@dataclass
class PartResult:
    """What one part did: its status, checks, tables and lines for the summary, and raw data."""

    key: str
    title: str
    status: str = "ok"  # ok, partial, cpu only, skipped, failed
    seconds: float = 0.0
    note: str = ""
    checks: list[dict[str, Any]] = field(default_factory=list)
    tables: list[dict[str, Any]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def check(self, name: str, passed: bool, detail: str = "") -> bool:
        self.checks.append({"name": name, "passed": bool(passed), "detail": detail})
        return bool(passed)

    def table(self, title: str, columns: list[str], rows: list[list[Any]]) -> None:
        self.tables.append({"title": title, "columns": columns, "rows": rows})


class Log:
    """Lines to stdout and to the log file, flushed as they come."""

    def __init__(self, path: Path):
        self.path = path
        self.handle = open(path, "a", encoding="utf-8")
        self.lock = threading.Lock()

    def __call__(self, line: str = "") -> None:
        with self.lock:
            print(line, flush=True)
            self.handle.write(line + "\n")
            self.handle.flush()


@dataclass
class Context:
    """What every part gets: the device, the clock, the folders and a cache of shared fixtures."""

    device: str | None  # "cuda", or "cpu" in a self-check; None: no CUDA, GPU sides are skipped
    selfcheck: bool
    out: Path
    work: Path
    log: Log
    deadline: float  # monotonic time by which every part has ended
    part_deadline: float = 0.0
    started: float = field(default_factory=time.monotonic)
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def cuda(self) -> bool:
        return self.device is not None and self.device.startswith("cuda")

    def left(self) -> float:
        """Seconds left for the running part."""
        return min(self.part_deadline, self.deadline) - time.monotonic()


@dataclass(frozen=True)
class Part:
    key: str
    title: str
    budget_s: float
    #: Below this many seconds left the part is not started.
    min_s: float
    #: The part is GPU-only: skipped without CUDA (unless a self-check runs it on the CPU).
    gpu_only: bool
    run: Callable[[Context, PartResult], None]


# --------------------------------------------------------------------------------------- timing


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def time_ms(fn: Callable[[], Any], device: str, warmup: int = 2, rounds: int = 5, until: float | None = None) -> list[float]:
    """Milliseconds of each of ``rounds`` calls of ``fn`` after ``warmup`` untimed ones: CUDA events
    around each call (the GPU's own clock), synchronised before and after; a host clock on a CPU.
    Stops early (after at least one timed call) when the monotonic clock passes ``until``."""
    import torch

    cuda = device.startswith("cuda")
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(rounds):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(float(start.elapsed_time(end)))
        else:
            began = time.perf_counter()
            fn()
            times.append(1000 * (time.perf_counter() - began))
        if until is not None and time.monotonic() > until:
            break
    return times


def median(values: list[float]) -> float:
    import numpy as np

    return float(np.median(values)) if values else float("nan")


@contextmanager
def peak_cuda_mb(device: str, into: dict[str, Any]):
    """``into["peak_cuda_mb"]``: the most memory torch allocated on the GPU inside the block (None on a CPU)."""
    import torch

    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    yield
    into["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / MB, 1) if cuda else None


@contextmanager
def tf32(enabled: bool):
    """TF32 for cuDNN convolutions and cuBLAS matrix products on or off inside the block."""
    import torch

    matmul = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = enabled
    try:
        with torch.backends.cudnn.flags(enabled=True, benchmark=torch.backends.cudnn.benchmark,
                                        deterministic=torch.backends.cudnn.deterministic, allow_tf32=enabled):
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul


# --------------------------------------------------------------------------------------- part: tests


def part_tests(ctx: Context, result: PartResult) -> None:
    """pytest -m gpu in a child process, killed at the part's deadline; pytest.log in the outputs."""
    junit = ctx.work / "junit.xml"
    command = [sys.executable, "-m", "pytest", "-m", "gpu", "-v", "-p", "no:cacheprovider", f"--junitxml={junit}",
               *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_gpu*.py"))]
    env = child_env(ctx, "tests")
    if ctx.selfcheck and not ctx.cuda:
        env["FACEBENCH_GPU_TESTS_ON_CPU"] = "1"
    ctx.log(f"  $ {' '.join(command[2:])}")
    returncode, output = run_child(command, ctx.left(), env)
    (ctx.out / "pytest.log").write_text(output)
    outcomes = (" PASSED", " FAILED", " SKIPPED", " ERROR", " XFAIL", " XPASS")
    tail = [line for line in output.splitlines()
            if ("::" in line and any(word in line for word in outcomes)) or line.startswith(("FAILED", "ERROR", "SKIPPED", "="))]
    for line in tail[-60:]:
        ctx.log(f"  {line}")
    if returncode is None:
        result.status = "failed"
        result.check("gpu tests finished within their budget", False, "killed at the part's deadline; see pytest.log")
        return
    counts = junit_counts(junit)
    result.data.update(returncode=returncode, **counts)
    result.note = ", ".join(f"{n} {k}" for k, n in counts.items() if n and k != "failures_detail") or "no tests ran"
    failed = counts["failed"] + counts["errors"]
    result.check("gpu tests: no failures", failed == 0 and returncode in (0, 5),
                 result.note + "".join(f"; {line}" for line in counts["failures_detail"]))
    if counts["passed"] == 0:
        result.status = "cpu only" if not ctx.cuda else "failed"
        result.lines.append("No gpu test ran: " + (result.note if counts["skipped"] else "none collected") + ".")


def child_env(ctx: Context, name: str) -> dict[str, str]:
    """The environment of a child process, with its own torch.compile cache: a child killed while
    compiling can leave a truncated kernel in the cache that breaks the next run."""
    return dict(os.environ, PYTHONUNBUFFERED="1", TORCHINDUCTOR_CACHE_DIR=str(ctx.work / f"inductor-{name}"))


#: Process groups of running children, for the watchdog to end before it exits.
CHILDREN: set[int] = set()


def run_child(command: list[str], timeout: float, env: dict[str, str]) -> tuple[int | None, str]:
    """Run ``command`` in its own process group (with any workers it starts); kill the group after
    ``timeout`` seconds. Returns (exit status or None when killed, output)."""
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    CHILDREN.add(process.pid)
    try:
        output, _ = process.communicate(timeout=max(1.0, timeout))
        return process.returncode, output
    except subprocess.TimeoutExpired:
        kill_group(process.pid)
        output, _ = process.communicate()
        return None, output + f"\n[gpu_check: killed after {timeout:.0f} s]\n"
    finally:
        kill_group(process.pid)  # workers the child left behind (e.g. compile workers)
        CHILDREN.discard(process.pid)


def kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def junit_counts(path: Path) -> dict[str, Any]:
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0, "failures_detail": []}
    if not path.exists():
        return counts
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        kinds = {child.tag for child in case}
        if "failure" in kinds or "error" in kinds:
            key = "failed" if "failure" in kinds else "errors"
            counts[key] += 1
            child = case.find("failure") if "failure" in kinds else case.find("error")
            message = (child.get("message") or "").strip().splitlines()
            counts["failures_detail"].append(f"{case.get('name')}: {message[0][:160] if message else ''}")
        elif "skipped" in kinds:
            counts["skipped"] += 1
        else:
            counts["passed"] += 1
    return counts


# --------------------------------------------------------------------------------------- StyleGAN2

#: Random-weight generators shaped like the official configurations (stylegan2-ada: paper256, ffhq1024).
SG2_CONFIGS = {
    256: {"z_dim": 512, "w_dim": 512, "mapping_layers": 8, "channel_base": 16384, "channel_max": 512},
    1024: {"z_dim": 512, "w_dim": 512, "mapping_layers": 8, "channel_base": 32768, "channel_max": 512},
}
#: Toy sizes for --selfcheck on a CPU.
SG2_TOY_CONFIGS = {
    32: {"z_dim": 32, "w_dim": 32, "mapping_layers": 2, "channel_base": 1024, "channel_max": 32},
    64: {"z_dim": 32, "w_dim": 32, "mapping_layers": 2, "channel_base": 2048, "channel_max": 32},
}
SG2_BATCHES = (1, 8, 32)


def sg2_configs(ctx: Context) -> dict[int, dict[str, int]]:
    return SG2_TOY_CONFIGS if ctx.selfcheck else SG2_CONFIGS


def sg2_batches(ctx: Context) -> tuple[int, ...]:
    return (1, 2, 4) if ctx.selfcheck else SG2_BATCHES


def make_stylegan2(resolution: int, config: dict[str, int], seed: int = 0):
    """A StyleGAN2 generator with random weights (as the tests build them) and random noise strengths;
    the top four resolutions in float16 on a GPU, clamped at 256, as the official configurations."""
    import torch

    from facebench.generators.stylegan2 import Generator
    from facebench.generators.stylegan2.networks import ToRGBLayer

    torch.manual_seed(seed)
    G = Generator(z_dim=config["z_dim"], c_dim=0, w_dim=config["w_dim"], img_resolution=resolution, img_channels=3,
                  mapping_kwargs={"num_layers": config["mapping_layers"]},
                  synthesis_kwargs={"channel_base": config["channel_base"], "channel_max": config["channel_max"],
                                    "num_fp16_res": 4, "conv_clamp": 256})
    strengths = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for module in G.modules():
            if hasattr(module, "noise_strength"):
                module.noise_strength.uniform_(0.0, 0.2, generator=strengths)
            if isinstance(module, ToRGBLayer):
                module.weight.mul_(0.1)  # pixels mostly inside [-1, 1], so uint8 differences are not hidden by clipping
    return G.eval()


def latents(n: int, z_dim: int, seed: int = 0):
    import torch

    return torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed))


def uint8_images(image):
    """The plug-in's conversion, on the image's own device: NCHW float -> NHWC uint8."""
    import torch

    return (image.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)


def difference(image, reference) -> dict[str, Any]:
    """max |a - b| (float images), relative to max |b|, and in uint8 levels (max, share of pixels > 1 level)."""
    a, b = image.detach().float().cpu(), reference.detach().float().cpu()
    levels = (uint8_images(a).int() - uint8_images(b).int()).abs()
    scale = float(b.abs().max())
    max_abs = float((a - b).abs().max())
    return {"max_abs": max_abs, "relative": max_abs / scale if scale else float("nan"), "levels_max": int(levels.max()),
            "pixels_over_1_level": float((levels > 1).float().mean()), "finite": bool(torch_isfinite(a))}


def torch_isfinite(x) -> bool:
    import torch

    return bool(torch.isfinite(x).all())


def part_sg2_parity(ctx: Context, result: PartResult) -> None:
    """CPU float32 reference images, then the same weights and latents on CUDA in float32 (TF32 as
    torch leaves it, and off) and along the float16 path."""
    import torch

    rows = []
    configs = sg2_configs(ctx)
    sizes = list(configs) if ctx.device else list(configs)[:1]
    if not ctx.device:
        result.lines.append(f"Without CUDA only the CPU reference at {sizes[0]} px is drawn; "
                            "the CUDA comparisons are skipped.")
    for resolution in sizes:
        if ctx.left() < 5:
            result.status = "partial"
            result.lines.append(f"{resolution} px: skipped, the part's time budget ran out")
            continue
        G = make_stylegan2(resolution, configs[resolution])
        z = latents(4 if resolution <= 256 else 1, G.z_dim, seed=resolution)
        if not ctx.device:
            z = z[:1]
        began = time.monotonic()
        with torch.inference_mode():
            reference = G(z, None, noise_mode="const")
        cpu_s = time.monotonic() - began
        ctx.log(f"  {resolution} px: CPU float32 reference of {len(z)} image(s) in {cpu_s:.1f} s")
        result.data.setdefault("cpu_reference_s", {})[resolution] = cpu_s
        if not ctx.device:
            result.check(f"CPU reference at {resolution} px is finite", torch_isfinite(reference))
            continue
        on_device = copy.deepcopy(G).to(ctx.device)
        zd = z.to(ctx.device)
        paths = [("float32, TF32 as torch leaves it", True, {"force_fp32": True}),
                 ("float32, TF32 off", False, {"force_fp32": True}),
                 ("float16 path (default on a GPU)", True, {"force_fp32": False})]
        for name, allow_tf32, kwargs in paths:
            with torch.inference_mode(), tf32(allow_tf32):
                image = on_device(zd, None, noise_mode="const", **kwargs)
            figures = difference(image, reference)
            rows.append([resolution, len(z), name, f"{figures['max_abs']:.2e}", f"{figures['relative']:.2e}",
                         figures["levels_max"], f"{100 * figures['pixels_over_1_level']:.3f}%"])
            result.data.setdefault("rows", []).append({"resolution": resolution, "batch": len(z), "path": name, **figures})
            ctx.log(f"  {resolution} px {name}: max |cuda - cpu| {figures['max_abs']:.2e} "
                    f"(relative {figures['relative']:.2e}), uint8 max {figures['levels_max']} levels")
            if name == "float32, TF32 off":
                result.check(f"StyleGAN2 {resolution} px: CUDA float32 (TF32 off) = CPU within 1e-3 of the largest "
                             "pixel and 1 uint8 level", figures["relative"] <= 1e-3 and figures["levels_max"] <= 1
                             and figures["finite"],
                             f"max |diff| {figures['max_abs']:.2e}, {figures['levels_max']} level(s)")
            elif name.startswith("float16"):
                result.check(f"StyleGAN2 {resolution} px: float16 path finite and within 1% of pixels > 1 level",
                             figures["finite"] and figures["pixels_over_1_level"] < 0.01,
                             f"max {figures['levels_max']} levels, {100 * figures['pixels_over_1_level']:.3f}% > 1 level")
        del on_device
    if rows:
        worst = {name: max(r["levels_max"] for r in result.data["rows"] if r["path"] == name) for name, _, _ in paths}
        result.note = "largest uint8 difference: " + "; ".join(f"{name} {levels}" for name, levels in worst.items())
        result.table("StyleGAN2: CUDA against CPU float32, same random weights and latents",
                     ["px", "images", "CUDA path", "max abs diff", "relative", "uint8 max levels", "pixels > 1 level"], rows)
    if not ctx.device:
        result.status = "cpu only"
        result.note = "CPU reference drawn; CUDA side skipped (no CUDA)"


def part_sg2_speed(ctx: Context, result: PartResult) -> None:
    """ms/image of z -> uint8 images on the device, eager, float16 path and float32, by CUDA events."""
    import torch

    rows, skipped = [], []
    configs = sg2_configs(ctx)
    for resolution, config in configs.items():
        G = make_stylegan2(resolution, config).to(ctx.device)
        for batch in sg2_batches(ctx):
            z = latents(batch, G.z_dim, seed=batch).to(ctx.device)
            for precision, force_fp32 in (("float16 path", False), ("float32", True)):
                if ctx.left() < 3:
                    skipped.append(f"{resolution} px b{batch} {precision}")
                    continue
                figures: dict[str, Any] = {}

                def draw(G=G, z=z, force_fp32=force_fp32):  # binds this iteration's values
                    with torch.inference_mode():
                        return uint8_images(G(z, None, noise_mode="const", force_fp32=force_fp32))

                with peak_cuda_mb(ctx.device, figures):
                    times = time_ms(draw, ctx.device, warmup=2, rounds=5, until=time.monotonic() + min(10, ctx.left()))
                per_image = median(times) / batch
                row = {"resolution": resolution, "batch": batch, "mode": "eager", "precision": precision,
                       "ms_per_image": per_image, "images_per_s": 1000 / per_image, "calls": len(times), **figures}
                result.data.setdefault("rows", []).append(row)
                rows.append([resolution, batch, "eager", precision, f"{per_image:.2f}", f"{1000 / per_image:.1f}",
                             figures["peak_cuda_mb"]])
                ctx.log(f"  {resolution} px b{batch} eager {precision}: {per_image:.2f} ms/image")
        del G
        release(ctx.device)
    result.table("StyleGAN2 eager: z -> uint8 images on the device (CUDA events, median of 5 calls)",
                 ["px", "batch", "mode", "precision", "ms/image", "images/s", "peak CUDA MB"], rows)
    result.check("StyleGAN2 eager timings measured", bool(rows), f"{len(rows)} configurations")
    largest = [r for r in result.data.get("rows", []) if r["resolution"] == max(configs) and r["precision"] == "float16 path"]
    if largest:
        best = min(largest, key=lambda r: r["ms_per_image"])
        result.note = f"{best['resolution']} px: {best['ms_per_image']:.2f} ms/image at batch {best['batch']} (float16 path)"
    if skipped:
        result.status = "partial"
        result.lines.append(f"Skipped for time: {', '.join(skipped)}.")


def release(device: str | None) -> None:
    import gc

    gc.collect()
    if device and device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


def part_sg2_compiled(ctx: Context, result: PartResult) -> None:
    """torch.compile'd synthesis (as the plug-in's ``compile=True``) in a child process that writes
    one JSON line per configuration and is killed when the budget runs out."""
    lines = ctx.work / "sg2_compiled.jsonl"
    lines.unlink(missing_ok=True)
    command = [sys.executable, str(Path(__file__).resolve()), "--child", "sg2_compiled", "--child-out", str(lines),
               "--child-seconds", f"{max(1.0, ctx.left() - 5):.0f}"]
    if ctx.selfcheck:
        command.append("--selfcheck")
    returncode, output = run_child(command, ctx.left(), child_env(ctx, "sg2_compiled"))
    for line in output.strip().splitlines()[-40:]:
        ctx.log(f"  | {line}")
    records = [json.loads(line) for line in lines.read_text().splitlines()] if lines.exists() else []
    rows = [r for r in records if r.get("kind") == "timing"]
    for r in rows:
        result.data.setdefault("rows", []).append(r)
    result.table("StyleGAN2 torch.compile (default mode) of the synthesis network, float16 path (CUDA events)",
                 ["px", "batch", "ms/image", "images/s", "first call s (compile)", "vs eager: max abs", "uint8 max levels"],
                 [[r["resolution"], r["batch"], f"{r['ms_per_image']:.2f}", f"{1000 / r['ms_per_image']:.1f}",
                   f"{r['first_call_s']:.1f}", r.get("max_abs", ""), r.get("levels_max", "")] for r in rows])
    planned = [r for r in records if r.get("kind") == "plan"]
    expected = planned[0]["configs"] if planned else []
    done = {(r["resolution"], r["batch"]) for r in rows}
    missing = [f"{res} px b{batch}" for res, batch in expected if (res, batch) not in done]
    errors = [r for r in records if r.get("kind") == "error"]
    for error in errors:
        result.lines.append(f"{error['where']}: {error['message']}")
    result.note = f"{len(rows)} of {len(expected)} configurations"
    if returncode is None:
        result.lines.append("The child process was killed when the part's time budget ran out.")
    if missing:
        result.status = "partial" if rows else "failed"
        result.lines.append(f"Not measured (time budget): {', '.join(missing)}.")
    result.check("torch.compile ran and its images are finite", bool(rows) and all(r.get("finite", True) for r in rows)
                 and not errors, f"{len(rows)} configurations" + (f"; {errors[0]['message']}" if errors else ""))


def child_sg2_compiled(out: Path, seconds: float, selfcheck: bool) -> None:
    """In the child: compile and time each configuration, most useful first, one JSON line each."""
    import torch

    deadline = time.monotonic() + seconds
    device = "cuda" if torch.cuda.is_available() else "cpu"
    ctx_configs = SG2_TOY_CONFIGS if selfcheck else SG2_CONFIGS
    small, large = list(ctx_configs)
    batches = (1, 2, 4) if selfcheck else SG2_BATCHES
    order = [(small, batches[2]), (large, batches[1]), (small, batches[1]), (large, batches[2]),
             (small, batches[0]), (large, batches[0])]

    def emit(record: dict[str, Any]) -> None:
        with open(out, "a") as handle:
            handle.write(json.dumps(record) + "\n")

    emit({"kind": "plan", "configs": order})
    generators: dict[int, Any] = {}
    for resolution, batch in order:
        if time.monotonic() > deadline:
            break
        try:
            if resolution not in generators:
                G = make_stylegan2(resolution, ctx_configs[resolution]).to(device)
                generators[resolution] = (G, torch.compile(G.synthesis))
            G, compiled = generators[resolution]
            z = latents(batch, G.z_dim, seed=batch).to(device)
            with torch.inference_mode():
                ws = G.mapping(z, None)
                began = time.monotonic()
                first = compiled(ws, noise_mode="const")
                synchronize(device)
                first_call_s = time.monotonic() - began
                eager = G.synthesis(ws, noise_mode="const")
            figures = difference(first, eager)

            def draw(compiled=compiled, G=G, z=z):  # binds this iteration's values
                with torch.inference_mode():
                    return uint8_images(compiled(G.mapping(z, None), noise_mode="const"))

            times = time_ms(draw, device, warmup=1, rounds=5, until=deadline)
            per_image = median(times) / batch
            emit({"kind": "timing", "resolution": resolution, "batch": batch, "ms_per_image": per_image,
                  "first_call_s": first_call_s, "max_abs": f"{figures['max_abs']:.2e}",
                  "levels_max": figures["levels_max"], "finite": figures["finite"], "calls": len(times)})
            print(f"{resolution} px b{batch} compiled: {per_image:.2f} ms/image (first call {first_call_s:.1f} s)",
                  flush=True)
        except Exception as exc:  # noqa: BLE001 - one line per failure, the rest go on
            emit({"kind": "error", "where": f"{resolution} px b{batch}", "message": one_line(exc)})
            print(f"{resolution} px b{batch}: {one_line(exc)}", flush=True)
            traceback.print_exc()
            break


# --------------------------------------------------------------------------------------- detectors

DETECTOR_BATCHES = (1, 32, 128)
DETECTOR_SIDE = 224


def resnet50_weights(ctx: Context) -> tuple[str, str]:
    """(path, arch): a ResNet-50 (a ResNet-18 in a self-check) with random weights and BatchNorm
    statistics, saved as safetensors once per run."""
    if "resnet50" not in ctx.cache:
        from safetensors.torch import save_file

        from facebench.detectors.checkpoint import random_resnet

        arch = "resnet18" if ctx.selfcheck else "resnet50"
        model = random_resnet(arch, 1, seed=0)
        path = ctx.work / f"{arch}-random.safetensors"
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
        ctx.cache["resnet50"] = (str(path), arch)
    return ctx.cache["resnet50"]


def noise_images(n: int, side: int, seed: int = 0):
    """uint8 [n, side, side, 3]: noise, every other image 2x upsampled (what the cnn learns to see)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, side, side, 3), dtype=np.uint8)
    images[1::2] = images[1::2, ::2, ::2].repeat(2, axis=1).repeat(2, axis=2)
    return images


def build_detectors(ctx: Context, device: str) -> dict[str, Any]:
    """The torch detectors on ``device``: cnn (fitted for one epoch on ``device``) and checkpoint."""
    import numpy as np

    from facebench.detectors.checkpoint import CheckpointDetector
    from facebench.detectors.cnn import CNNDetector

    side = 64 if ctx.selfcheck else DETECTOR_SIDE
    cnn = CNNDetector(epochs=1, batch_size=16, input_size=side, device=device)
    train = noise_images(32, side, seed=1)
    cnn.fit(train, np.arange(32) % 2)
    weights, arch = resnet50_weights(ctx)
    checkpoint = CheckpointDetector(weights=weights, arch=arch, device=device, batch_size=32)
    return {"cnn": cnn, f"checkpoint ({arch})": checkpoint}


def part_detectors(ctx: Context, result: PartResult) -> None:
    """images/s of every torch detector's ``score`` at each batch size and precision (CUDA events),
    peak CUDA memory, the harness's benchmark_detector beside it, and autocast's score change."""
    import numpy as np
    import torch

    from facebench.harness.run.timing import benchmark_detector

    batches = (1, 4, 8) if ctx.selfcheck else DETECTOR_BATCHES
    side = 64 if ctx.selfcheck else DETECTOR_SIDE
    images = noise_images(max(batches), side)
    precisions = [("float32", None)]
    if ctx.cuda:
        precisions += [("float16 autocast", torch.float16), ("bfloat16 autocast", torch.bfloat16)]
    rows, skipped = [], []
    detectors = build_detectors(ctx, ctx.device)
    for name, detector in detectors.items():
        reference = None
        for precision, dtype in precisions:
            for batch in batches:
                if ctx.left() < 3:
                    skipped.append(f"{name} {precision} b{batch}")
                    continue
                detector.batch_size = batch
                chunk = images[:batch]
                autocast = torch.autocast("cuda", dtype=dtype) if dtype is not None else None

                def score(detector=detector, chunk=chunk, autocast=autocast):  # binds this iteration's values
                    if autocast is None:
                        return detector.score(chunk)
                    with autocast:
                        return detector.score(chunk)

                figures: dict[str, Any] = {}
                with peak_cuda_mb(ctx.device, figures):
                    times = time_ms(score, ctx.device, warmup=2, rounds=5, until=time.monotonic() + min(8, ctx.left()))
                ms = median(times)
                row = {"detector": name, "precision": precision, "batch": batch, "side": side,
                       "images_per_s": 1000 * batch / ms, "ms_per_batch": ms, **figures}
                if precision == "float32":
                    harness = benchmark_detector(detector, images, batch, warmup=1, rounds=3, track_memory=False)
                    row["harness_images_per_s"] = harness["images_per_s"]
                if batch == max(batches):
                    scores = score()
                    if precision == "float32":
                        reference = scores
                    elif reference is not None:
                        row["max_score_change"] = float(np.abs(scores - reference).max())
                result.data.setdefault("rows", []).append(row)
                rows.append([name, precision, batch, f"{row['images_per_s']:.1f}", f"{ms:.2f}", row["peak_cuda_mb"],
                             f"{row['harness_images_per_s']:.1f}" if "harness_images_per_s" in row else "",
                             f"{row['max_score_change']:.1e}" if "max_score_change" in row else ""])
                ctx.log(f"  {name} {precision} b{batch}: {row['images_per_s']:.1f} images/s")
    result.table(f"Detectors: score() on {side} px images (CUDA events, median of 5 calls); "
                 "the detectors have no precision option, so autocast wraps score() from outside",
                 ["detector", "precision", "batch", "images/s", "ms/batch", "peak CUDA MB", "harness images/s",
                  "max |score - float32|"], rows)
    result.check("every torch detector timed at every batch size", not skipped and len(rows) == len(detectors) *
                 len(precisions) * len(batches), f"{len(rows)} configurations")
    result.note = "; ".join(f"{r['detector']} b{r['batch']}: {r['images_per_s']:.0f} images/s"
                            for r in result.data.get("rows", []) if r["precision"] == "float32" and r["batch"] == max(batches))
    agree = [r for r in result.data.get("rows", []) if "harness_images_per_s" in r and r["batch"] > 1]
    if ctx.cuda and agree:
        ratios = [r["harness_images_per_s"] / r["images_per_s"] for r in agree]
        result.check("harness timing (host clock + synchronise) within 25% of CUDA events at batch > 1",
                     all(0.75 <= x <= 1.25 for x in ratios), "ratios " + ", ".join(f"{x:.2f}" for x in ratios))
    if skipped:
        result.status = "partial"
        result.lines.append(f"Skipped for time: {', '.join(skipped)}.")


# --------------------------------------------------------------------------------------- out of memory


def noise_corpus(path: Path, n: int, side: int):
    """A corpus of ``n`` noise images (half labelled fake), written with facebench's corpus writer."""
    from facebench.harness.data.corpus import write_corpus
    from facebench.harness.contracts.types import Batch, Record

    images = noise_images(n, side, seed=7)
    records = [Record(id=f"noise-{i:04d}", label=i % 2, source="gpu_check", source_version="1", seed=i, pair=f"p{i // 2:04d}")
               for i in range(n)]
    return write_corpus(path, [Batch(images, records)], [{"name": "gpu_check", "images": n, "side": side}])


class CallLog:
    """A detector whose ``score`` calls are recorded as (batch size, "ok" or what went wrong)."""

    def __init__(self, detector: Any):
        self.detector = detector
        self.device = detector.device
        self.score_range = getattr(detector, "score_range", None)
        self.calls: list[tuple[int, str]] = []

    def score(self, images):
        from facebench.harness.run.timing import is_out_of_memory

        try:
            scores = self.detector.score(images)
        except Exception as exc:
            self.calls.append((len(images), "out of memory" if is_out_of_memory(exc) else one_line(exc)))
            raise
        self.calls.append((len(images), "ok"))
        return scores


def calls_line(calls: list[tuple[int, str]]) -> str:
    """(128, oom), (64, oom), (32, ok), (32, ok) -> "128 out of memory, 64 out of memory, 32 ok x2"."""
    parts: list[list[Any]] = []
    for size, outcome in calls:
        if parts and parts[-1][0] == size and parts[-1][1] == outcome:
            parts[-1][2] += 1
        else:
            parts.append([size, outcome, 1])
    return ", ".join(f"{size} {outcome}" + (f" x{count}" if count > 1 else "") for size, outcome, count in parts)


def part_oom(ctx: Context, result: PartResult) -> None:
    """Score a corpus at batch 128 under a CUDA memory cap that 128 images do not fit: the runner
    must halve the batch until it fits and give the scores of an uncapped run."""
    import numpy as np
    import torch

    from facebench.detectors.checkpoint import CheckpointDetector
    from facebench.harness.run.scoring import score_split

    start = 128
    weights, arch = resnet50_weights(ctx)
    corpus = noise_corpus(ctx.work / "oom-corpus", start, DETECTOR_SIDE)
    detector = CheckpointDetector(weights=weights, arch=arch, device="cuda", batch_size=start)
    images = corpus.load_images()
    # Deterministic cuDNN in true float32: the cap may steer cuDNN to algorithms with less workspace,
    # whose TF32 rounding alone would move the scores by ~1e-4.
    with tf32(False), torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True, allow_tf32=False):
        _, uncapped_start, _ = score_split(detector, corpus, start, arch)
        release("cuda")
        before = torch.cuda.memory_allocated()
        figures: dict[str, Any] = {}
        with peak_cuda_mb("cuda", figures):
            detector.score(images[:16])
        per_16_mb = max(1.0, figures["peak_cuda_mb"] - before / MB)  # 16 images' activations and workspace
        release("cuda")
        total = torch.cuda.get_device_properties(0).total_memory
        for factor in (2.5, 6.0):  # room for ~40 images; more if that proves too tight for one
            cap = torch.cuda.memory_reserved() + int(factor * per_16_mb * MB)
            ctx.log(f"  16 images need ~{per_16_mb:.0f} MB beyond the weights; cap {cap / MB:.0f} MB "
                    f"({cap / total:.5f} of {total / 2**30:.0f} GiB)")
            logged = CallLog(detector)
            torch.cuda.set_per_process_memory_fraction(cap / total)
            try:
                _, capped, throughput = score_split(logged, corpus, start, arch)
                break
            except Exception as exc:  # noqa: BLE001 - out of memory with one image: the cap was too tight
                if factor == 6.0:
                    raise
                ctx.log(f"  the cap was too tight ({one_line(exc)}); trying a larger one")
            finally:
                torch.cuda.set_per_process_memory_fraction(1.0)
                release("cuda")
        final = int(throughput["batch_size"])
        _, uncapped_final, _ = score_split(detector, corpus, final, arch)
    same_size = float(np.abs(capped - uncapped_final).max())
    from_start = float(np.abs(capped - uncapped_start).max())
    identical = bool(np.array_equal(capped, uncapped_final))
    result.data.update(start=start, final=final, per_16_images_mb=per_16_mb, cap_mb=cap / MB, calls=logged.calls,
                       warnings=throughput.get("warnings", []), max_diff_same_batch=same_size,
                       max_diff_start_batch=from_start, identical=identical)
    result.lines += [
        f"{arch} on {start} noise images of {DETECTOR_SIDE} px, cuDNN deterministic, TF32 off; CUDA memory capped at "
        f"{cap / MB:.0f} MB (16 images took ~{per_16_mb:.0f} MB beyond the weights).",
        f"score() calls under the cap: {calls_line(logged.calls)}.",
        f"Runner warning: {'; '.join(throughput.get('warnings', [])) or 'none'}.",
        f"Scores against an uncapped run at batch {final}: max |diff| {same_size:.1e} (bit-identical: "
        f"{'yes' if identical else 'no'}); against an uncapped run at batch {start}: max |diff| {from_start:.1e}.",
    ]
    for line in result.lines:
        ctx.log(f"  {line}")
    result.check("out of memory under the cap, and the runner halved the batch", final < start and
                 any(outcome == "out of memory" for _, outcome in logged.calls) and bool(throughput.get("warnings")),
                 f"{start} -> {final}")
    result.check("scores under the cap = an uncapped run's (max |diff| <= 1e-5)", same_size <= 1e-5 and from_start <= 1e-5,
                 f"{same_size:.1e} at batch {final}, {from_start:.1e} at batch {start}")
    result.note = f"batch {start} -> {final}, scores {'identical' if identical else f'within {same_size:.0e}'}"


# --------------------------------------------------------------------------------------- suite


def part_suite(ctx: Context, result: PartResult) -> None:
    """A small suite, CPU and CUDA copies of each torch detector side by side: store, leaderboard, report."""
    import numpy as np
    import pyarrow.parquet as pq

    from facebench.harness.report.html import write_report
    from facebench.harness.report.text import build_leaderboard, write_markdown
    from facebench.harness.run.runner import run_suite
    from facebench.harness.data.suite import BootstrapSpec, DetectorSpec, GeneratorSpec, SplitSpec, Suite, ThroughputSpec

    weights, arch = resnet50_weights(ctx)
    devices = ["cpu"] + (["cuda"] if ctx.cuda else [])
    if not ctx.cuda:
        result.lines.append("Without CUDA the suite runs its CPU detectors only; the cuda copies are left out.")
    # Fewer images and a lighter sweep where there is no GPU: the dry run on a small CPU stays short.
    count, sweep, epochs = (24, (1, 32), 2) if ctx.cuda else (12, (8,), 1)
    detectors = [DetectorSpec(name="spectrum", label="spectrum")]
    for device in devices:
        detectors += [
            DetectorSpec(name="cnn", label=f"cnn-{device}", params={"device": device, "epochs": epochs, "batch_size": 16}),
            DetectorSpec(name="checkpoint", label=f"checkpoint-{device}",
                         params={"weights": weights, "arch": arch, "device": device, "batch_size": 32}),
        ]
    suite = Suite(
        name="gpu-check", source="benchmarks/gpu_check.py", description="CPU and CUDA detectors side by side",
        generators=(GeneratorSpec(name="parametric", label="faces", count=count, batch_size=count,
                                  params={"resolution": 64, "artifacts": "upsampling"}),),
        detectors=tuple(detectors), split=SplitSpec(test_fraction=0.5, seed=0, calibration_fraction=0.25),
        bootstrap=BootstrapSpec(resamples=200, seed=0),
        throughput=ThroughputSpec(batch_sizes=sweep, warmup=1, rounds=2, images=max(sweep)),
    )
    folder = ctx.work / "suite"
    store = folder / "facebench.sqlite"
    run = run_suite(suite, folder, store, show_progress=False, use_cache=False)
    board = build_leaderboard(run.run, run.metrics, run.throughput, run.errors)
    write_markdown(board, ctx.out / "leaderboard.md")
    report = write_report(run, ctx.out / "report.html", results_dir=folder)  # the result in hand is what the store holds
    ctx.log(f"  run {run.run['run_id']}: {len(run.metrics)} metric rows, {len(run.throughput)} throughput rows, "
            f"{len(run.errors)} errors; report {report.stat().st_size / 1e6:.2f} MB")
    for error in run.errors:
        result.lines.append(f"error: {error['task']}: {error['message']}")
    result.data.update(run_id=run.run["run_id"], errors=run.errors, throughput=run.throughput, warnings=run.warnings)
    result.check("suite ran without errors", not run.errors, f"{len(run.errors)} error(s)")
    result.check("store, leaderboard.md and report.html written", store.exists() and report.exists()
                 and (ctx.out / "leaderboard.md").exists())
    rows = side_by_side(run.throughput)
    result.table("Throughput in the suite (64 px faces): images/s per device", ["detector", "kind", "batch", *devices,
                 *(["cuda / cpu"] if ctx.cuda else [])], rows)
    if ctx.cuda:
        speed_rows = [t for t in run.throughput if str(t.get("device", "")).startswith("cuda")]
        result.check("cuda detectors ran on the GPU", len(speed_rows) > 0, f"{len(speed_rows)} cuda throughput rows")
        scores = pq.read_table(run.run_dir / "scores.parquet").to_pylist()
        by = {(s["detector"], s["id"]): s["score"] for s in scores if s["perturbation"] == "none"}
        pairs = [(v, by[("checkpoint-cuda", i)]) for (d, i), v in by.items()
                 if d == "checkpoint-cpu" and ("checkpoint-cuda", i) in by]
        gap = float(np.max([abs(a - b) for a, b in pairs])) if pairs else float("nan")
        result.check("checkpoint scores on cuda = on cpu (max |diff| <= 1e-2, TF32 as torch leaves it)",
                     bool(pairs) and gap <= 1e-2, f"{len(pairs)} images, max |diff| {gap:.1e}")
    result.note = f"{len(run.metrics)} metric rows, {len(run.errors)} errors"
    if not ctx.cuda:
        result.status = "cpu only"


def side_by_side(throughput: list[dict[str, Any]]) -> list[list[Any]]:
    """One row per (detector, kind, batch) with images/s per device, e.g. cnn | detector | 16 | 812.0 | 9120.4."""
    table: dict[tuple[str, str, Any], dict[str, float]] = {}
    for row in throughput:
        if row.get("kind") not in ("detector", "sweep") or row.get("images_per_s") is None:
            continue
        name = str(row["name"]).split(" @ ")[0]
        device = str(row.get("device") or "cpu").split(":")[0]
        base = name.removesuffix(f"-{device}")
        table.setdefault((base, row["kind"], row.get("batch_size")), {})[device] = float(row["images_per_s"])
    rows = []
    with_cuda = any("cuda" in speeds for speeds in table.values())
    for (base, kind, batch), speeds in sorted(table.items(), key=lambda item: (item[0][0], item[0][1], item[0][2] or 0)):
        row = [base, "scoring" if kind == "detector" else "sweep", batch, f"{speeds['cpu']:.1f}" if "cpu" in speeds else "-"]
        if with_cuda:
            row.append(f"{speeds['cuda']:.1f}" if "cuda" in speeds else "-")
            row.append(f"{speeds['cuda'] / speeds['cpu']:.1f}x" if "cuda" in speeds and speeds.get("cpu") else "-")
        rows.append(row)
    return rows


# --------------------------------------------------------------------------------------- outputs

PARTS = [
    Part("tests", "gpu tests (pytest -m gpu)", 120, 20, False, part_tests),
    Part("sg2_parity", "StyleGAN2: CUDA against CPU", 45, 8, False, part_sg2_parity),
    Part("sg2_speed", "StyleGAN2 speed, eager", 75, 10, True, part_sg2_speed),
    Part("detectors", "detector throughput", 60, 10, True, part_detectors),
    Part("oom", "out-of-memory back-off under a real cap", 45, 10, True, part_oom),
    Part("suite", "suite end to end (CPU and CUDA detectors)", 75, 15, False, part_suite),
    Part("sg2_compiled", "StyleGAN2 speed, torch.compile", 240, 30, True, part_sg2_compiled),
]


def environment_info() -> dict[str, Any]:
    import torch

    from facebench.harness.data.environment import environment

    info = environment()
    info.update(cudnn=torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
                tf32_matmul=torch.backends.cuda.matmul.allow_tf32, tf32_cudnn=torch.backends.cudnn.allow_tf32)
    if torch.cuda.is_available():
        properties = torch.cuda.get_device_properties(0)
        info.update(capability=f"{properties.major}.{properties.minor}", multiprocessors=properties.multi_processor_count)
        try:
            info["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                            capture_output=True, text=True, timeout=10).stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            info["driver"] = None
    return info


def markdown_table(columns: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        return "" if value is None else str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def summary_markdown(state: dict[str, Any]) -> str:
    env = state["environment"]
    parts = [PartResult(**p) for p in state["parts"]]
    checks = [(p.title, c) for p in parts for c in p.checks]
    failed = [c for _, c in checks if not c["passed"]]
    gpu = (f"{env.get('gpu')} (compute capability {env.get('capability')}, {env.get('gpu_memory_gb')} GiB, "
           f"driver {env.get('driver')})" if env.get("gpu") else "no CUDA device")
    lines = [
        "# facebench GPU check",
        "",
        f"- Machine: {gpu}; {env.get('cpu_cores')} CPU cores ({env.get('cpu_model')})",
        f"- torch {env.get('torch')} (CUDA {env.get('cuda')}, cuDNN {env.get('cudnn')}), Python {env.get('python')}, "
        f"numpy {env.get('numpy')}; TF32: matmul {'on' if env.get('tf32_matmul') else 'off'}, "
        f"cuDNN {'on' if env.get('tf32_cudnn') else 'off'} (torch's defaults unless a row says otherwise)",
        f"- facebench {env.get('facebench')} at commit {env.get('git_commit') or 'unknown'} ({state['import']})",
        f"- Budget {state['budget_s']:.0f} s, used {state['elapsed_s']:.0f} s; checks: {len(checks) - len(failed)} passed, "
        f"{len(failed)} failed" + (f"; {state['stopped']}" if state.get("stopped") else ""),
        "",
        markdown_table(["part", "status", "seconds", "note"],
                       [[p.title, p.status, f"{p.seconds:.1f}", p.note] for p in parts]),
        "",
        "## Checks",
        "",
    ]
    lines += [f"- [{'x' if c['passed'] else ' '}] {title}: {c['name']}" + (f" ({c['detail']})" if c["detail"] else "")
              for title, c in checks] or ["- none ran"]
    for p in parts:
        if not (p.tables or p.lines):
            continue
        lines += ["", f"## {p.title}", ""]
        for text in p.lines:
            lines += [text, ""]
        for table in p.tables:
            lines += [f"*{table['title']}*", "", markdown_table(table["columns"], table["rows"]), ""]
    lines += ["", "Files: summary.md (this), results.json (every figure), leaderboard.md and report.html (the suite), "
              "pytest.log, gpu_check.log."]
    return "\n".join(lines) + "\n"


def write_outputs(out: Path, state: dict[str, Any]) -> None:
    """summary.md and results.json, each written whole and renamed into place."""
    for name, text in (("results.json", json.dumps(state, indent=1, default=str)), ("summary.md", summary_markdown(state))):
        temporary = out / f".{name}.tmp"
        temporary.write_text(text)
        os.replace(temporary, out / name)


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__


# --------------------------------------------------------------------------------------- main


def run_part(part: Part, ctx: Context, state: dict[str, Any], parts: list[PartResult]) -> PartResult:
    result = PartResult(part.key, part.title)
    parts.append(result)
    left = ctx.deadline - time.monotonic()
    if part.gpu_only and not ctx.device:
        result.status, result.note = "skipped", "skipped: needs CUDA (torch.cuda.is_available() is False)"
    elif part.key == "oom" and not ctx.cuda:
        result.status, result.note = "skipped", "skipped: a CUDA memory cap needs CUDA"
    elif left < part.min_s:
        result.status, result.note = "skipped", f"skipped: {left:.0f} s of the budget left, the part needs {part.min_s:.0f}"
    if result.status == "skipped":
        ctx.log(f"[{part.key}] {result.note}")
        return result
    ctx.part_deadline = time.monotonic() + min(part.budget_s, left)
    ctx.log(f"[{part.key}] {part.title} (budget {min(part.budget_s, left):.0f} s)")
    began = time.monotonic()
    result.status, result.note = "running", f"started at {began - ctx.started:.0f} s"
    try:
        part.run(ctx, result)
        if result.status == "running":
            result.status, result.note = "ok", "" if result.note.startswith("started at") else result.note
        if any(not c["passed"] for c in result.checks) and result.status == "ok":
            result.status = "failed"
    except Exception as exc:  # noqa: BLE001 - a broken part must not lose the others
        result.status = "failed"
        result.note = one_line(exc)
        result.check(f"{part.title} ran", False, one_line(exc))
        ctx.log(traceback.format_exc())
    finally:
        result.seconds = time.monotonic() - began
        release(ctx.device)
    ctx.log(f"[{part.key}] {result.status} in {result.seconds:.1f} s" + (f": {result.note}" if result.note else ""))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or "gpu_check_out"),
                        help="folder for the outputs [default: $OUT, else ./gpu_check_out]")
    parser.add_argument("--budget", type=float, default=MAX_BUDGET_S,
                        help=f"seconds for the whole check, at most {MAX_BUDGET_S:.0f} [default: %(default)s]")
    parser.add_argument("--parts", default=",".join(p.key for p in PARTS), help="comma-separated parts to run")
    parser.add_argument("--selfcheck", action="store_true", help="without a GPU: run the GPU parts on the CPU at toy sizes")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-seconds", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    started = time.monotonic()
    how = facebench_on_path()
    if args.child == "sg2_compiled":
        child_sg2_compiled(args.child_out, args.child_seconds, args.selfcheck)
        return 0
    unknown = sorted(set(args.parts.split(",")) - {p.key for p in PARTS})
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; known: {', '.join(p.key for p in PARTS)}")
    budget = min(max(args.budget, 1.0), MAX_BUDGET_S)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    for name in ("summary.md", "results.json", "leaderboard.md", "report.html", "pytest.log", "gpu_check.log"):
        (out / name).unlink(missing_ok=True)
    log = Log(out / "gpu_check.log")
    import torch

    device = "cuda" if torch.cuda.is_available() else ("cpu" if args.selfcheck else None)
    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    ctx = Context(device=device, selfcheck=args.selfcheck, out=out, work=work, log=log,
                  deadline=started + budget - RESERVE_S, started=started)
    parts: list[PartResult] = []
    state: dict[str, Any] = {"format": "facebench-gpu-check", "version": 1, "budget_s": budget, "import": how,
                             "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                             "selfcheck": args.selfcheck, "environment": environment_info(), "parts": [], "elapsed_s": 0.0}
    env = state["environment"]
    log(f"facebench GPU check: {env.get('gpu') or 'no CUDA device'}, torch {env.get('torch')}, "
        f"budget {budget:.0f} s, outputs in {out} (facebench {how})")
    if args.selfcheck:
        log("self-check: the GPU parts run on the CPU at toy sizes; no figure here is a GPU figure")

    def save(stopped: str = "") -> None:
        state["parts"] = [asdict(p) for p in parts]
        state["elapsed_s"] = time.monotonic() - started
        if stopped:
            state["stopped"] = stopped
        write_outputs(out, state)

    def watchdog() -> None:
        running = parts[-1].key if parts else "start-up"
        log(f"watchdog: the {budget:.0f} s budget ran out during part {running!r}; writing what there is")
        for pid in list(CHILDREN):
            kill_group(pid)
        for part in parts:
            if part.status == "running":
                part.status = "stopped by the watchdog"
        save(f"stopped by the watchdog during part {running!r}")
        os._exit(3)

    timer = threading.Timer(budget - (time.monotonic() - started), watchdog)
    timer.daemon = True
    timer.start()
    chosen = args.parts.split(",")
    for part in PARTS:
        if part.key in chosen:
            run_part(part, ctx, state, parts)
            save()
    timer.cancel()
    save()
    for folder in (work, *MADE):  # corpora, weights and compile caches of this run; the import mapping
        shutil.rmtree(folder, ignore_errors=True)
    checks = [c for p in parts for c in p.checks]
    failed = [c for c in checks if not c["passed"]]
    log(f"done in {time.monotonic() - started:.1f} s: {len(checks) - len(failed)} checks passed, {len(failed)} failed; "
        f"summary in {out / 'summary.md'}")
    for p in parts:
        log(f"  {p.key:<13} {p.status:<9} {p.seconds:6.1f} s  {p.note}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

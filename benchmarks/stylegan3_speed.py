"""CPU (or GPU) ms per image of our StyleGAN3 generator, next to our StyleGAN2, and of its filtered activation.

Networks are FFHQ-sized with random weights: z = w = 512, channel_base 32768, channel_max 512
(StyleGAN3-T: 3x3 convolutions, separable filters; ``--config r``: 1x1 convolutions, doubled
channels, radial filters; StyleGAN2: the same channel budget). Rows:

* ``stylegan3`` / ``stylegan2``: mapping + synthesis, ``batch`` images per forward pass
  (the stylegan3 plug-in runs batch 1 unless ``batched=True``);
* ``filtered-act``: the part of the StyleGAN3 rows spent in the filtered leaky ReLU
  (bias, up-sampling, activation, clamp, down-sampling) of all layers, timed inside the same runs.

Run (figures need a quiet machine):
    python benchmarks/stylegan3_speed.py                       # 256 and 1024 px, batch 1 and 8
    python benchmarks/stylegan3_speed.py --sizes 256 --batches 1 --rounds 1
    python benchmarks/stylegan3_speed.py --tiny                # a check that it runs, in seconds
A run whose largest activation would pass ``--max-gb`` is skipped with a note.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from facebench.generators.stylegan2 import Generator as StyleGAN2
from facebench.generators.stylegan3 import networks as stylegan3_networks

FULL = {"z_dim": 512, "w_dim": 512, "channel_base": 32768, "channel_max": 512}
TINY = {"z_dim": 16, "w_dim": 16, "channel_base": 256, "channel_max": 16}


class ActivationTimer:
    """Wraps ``filtered_lrelu`` of the StyleGAN3 module to add up the time spent in it."""

    def __init__(self):
        self.seconds = 0.0
        self.original = stylegan3_networks.filtered_lrelu

    def __enter__(self):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            out = self.original(*args, **kwargs)
            if out.is_cuda:
                torch.cuda.synchronize(out.device)
            self.seconds += time.perf_counter() - start
            return out

        stylegan3_networks.filtered_lrelu = timed
        return self

    def __exit__(self, *exc):
        stylegan3_networks.filtered_lrelu = self.original


def stylegan3(size: int, sizes: dict, config: str) -> torch.nn.Module:
    extra = {}
    base, top = sizes["channel_base"], sizes["channel_max"]
    if config == "r":
        extra = {"conv_kernel": 1, "use_radial_filters": True}
        base, top = base * 2, top * 2
    return stylegan3_networks.Generator(z_dim=sizes["z_dim"], c_dim=0, w_dim=sizes["w_dim"], img_resolution=size,
                                        img_channels=3, mapping_kwargs={"num_layers": 2}, channel_base=base,
                                        channel_max=top, **extra)


def stylegan2(size: int, sizes: dict) -> torch.nn.Module:
    return StyleGAN2(z_dim=sizes["z_dim"], c_dim=0, w_dim=sizes["w_dim"], img_resolution=size, img_channels=3,
                     synthesis_kwargs={"channel_base": sizes["channel_base"], "channel_max": sizes["channel_max"],
                                       "conv_clamp": 256})


def largest_activation_gb(G, batch: int) -> float:
    """Bytes of the largest up-sampled StyleGAN3 activation (or StyleGAN2 layer output), in GB."""
    if hasattr(G.synthesis, "layer_names"):
        layers = [getattr(G.synthesis, name) for name in G.synthesis.layer_names]
        elements = max(layer.out_channels * (int(layer.in_size[0] + layer.conv_kernel - 1) * layer.up_factor) ** 2
                       for layer in layers)
    else:
        r = G.img_resolution
        elements = getattr(G.synthesis, f"b{r}").conv1.weight.shape[0] * (2 * r + 3) ** 2
    return elements * batch * 4 / 1e9


def time_network(G, batch: int, rounds: int, device: str) -> tuple[float, float]:
    """Median ms per image of one forward pass, and of its filtered activations (0 for StyleGAN2)."""
    z = torch.randn(batch, G.z_dim, device=device)
    totals, activations = [], []
    with torch.no_grad():
        G(z, None, truncation_psi=0.7, noise_mode="const")  # warm-up
        for _ in range(rounds):
            with ActivationTimer() as timer:
                start = time.perf_counter()
                G(z, None, truncation_psi=0.7, noise_mode="const")
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                totals.append(time.perf_counter() - start)
            activations.append(timer.seconds)
    return 1000 * statistics.median(totals) / batch, 1000 * statistics.median(activations) / batch


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256,1024", help="resolutions, comma-separated")
    parser.add_argument("--batches", default="1,8", help="images per forward pass, comma-separated")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per row (median)")
    parser.add_argument("--config", choices=("t", "r"), default="t", help="StyleGAN3 config")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--max-gb", type=float, default=16.0, help="skip runs whose largest activation is larger")
    parser.add_argument("--tiny", action="store_true", help="tiny networks at 32 and 64 px: checks the script runs")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = TINY if args.tiny else FULL
    resolutions = [32, 64] if args.tiny else [int(s) for s in args.sizes.split(",")]
    batches = [int(b) for b in args.batches.split(",")]
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, "
          f"StyleGAN3-{args.config.upper()}{' (tiny)' if args.tiny else ''}")
    print(f"{'network':<14}{'px':>6}{'batch':>7}{'ms/image':>12}")
    for resolution in resolutions:
        for family, G in (("stylegan3", stylegan3(resolution, sizes, args.config)), ("stylegan2", stylegan2(resolution, sizes))):
            G = G.eval().to(args.device)
            for batch in batches:
                need = largest_activation_gb(G, batch)
                if need > args.max_gb:
                    print(f"{family:<14}{resolution:>6}{batch:>7}   skipped: largest activation {need:.1f} GB > --max-gb")
                    continue
                total, activation = time_network(G, batch, args.rounds, args.device)
                print(f"{family:<14}{resolution:>6}{batch:>7}{total:>12.1f}")
                if family == "stylegan3":
                    print(f"{'filtered-act':<14}{resolution:>6}{batch:>7}{activation:>12.1f}"
                          f"   ({100 * activation / total:.0f}% of stylegan3)")


if __name__ == "__main__":
    main()

"""StyleGAN3 (configs T and R) generator networks, our own implementation of ../shared/STYLEGAN3.md.

Written from the specification and the paper (Karras et al. 2021, "Alias-Free Generative
Adversarial Networks"). Constructor arguments, module names, state-dict keys and their order
follow the official models, so an official ``G_ema`` state dict loads unchanged. Usage::

    G = Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=1024, img_channels=3)
    img = G(z, c, truncation_psi=0.7)                         # [N, 3, H, W] float, ~[-1, 1]
    ws = G.mapping(z, c, truncation_psi=0.7); img = G.synthesis(ws)

The network always runs in float32 (the official ``force_fp32=True`` behaviour); it has no
noise inputs, so ``noise_mode`` is accepted and ignored, as the official code does.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.signal
import scipy.special
import torch
import torch.nn.functional as F
from torch import nn

from ..stylegan2.networks import FullyConnectedLayer, MappingNetwork

NOISE_MODES = ("const", "random", "none")


# ---------------------------------------------------------------------------------------------
# Filters and the filtered leaky ReLU


def lowpass_filter(taps: int, cutoff: float, width: float, rate: float, radial: bool = False) -> torch.Tensor | None:
    """A Kaiser-windowed low-pass FIR filter designed in float64, returned as float32.

    Separable (1-D, ``taps`` long): the windowed sinc of ``scipy.signal.firwin`` with transition
    ``width``, DC gain 1. Radial (2-D, ``taps`` x ``taps``): a jinc on the same grid times the
    outer product of the same Kaiser window, normalised to sum 1. One tap means no filter: None.
    """
    if taps == 1:
        return None
    if not radial:
        taps_1d = scipy.signal.firwin(numtaps=taps, cutoff=cutoff, width=width, fs=rate)
        return torch.as_tensor(taps_1d, dtype=torch.float32)
    position = (np.arange(taps, dtype=np.float64) - (taps - 1) / 2) / rate
    radius = np.hypot(*np.meshgrid(position, position))
    jinc = scipy.special.j1(2 * cutoff * (np.pi * radius)) / (np.pi * radius)
    beta = scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(taps, width / (rate / 2)))
    window = np.kaiser(taps, beta)
    kernel = jinc * np.outer(window, window)
    return torch.as_tensor(kernel / kernel.sum(), dtype=torch.float32)


def _depthwise(x: torch.Tensor, taps: torch.Tensor, shape: tuple[int, int], stride: tuple[int, int],
               transposed: bool = False, crop: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """The same ``taps`` (flipped: a true convolution) on every channel, as one grouped (transposed) conv.

    ``crop`` (transposed only) drops that many outputs at both ends of each axis (height, width).
    """
    channels = x.shape[1]
    kernel = taps.to(x.dtype).flip(list(range(taps.ndim))).reshape(1, 1, *shape).expand(channels, 1, *shape)
    if transposed:
        return F.conv_transpose2d(x, kernel, stride=stride, padding=crop, groups=channels)
    return F.conv2d(x, kernel, stride=stride, groups=channels)


def _upsample_axis(x: torch.Tensor, f: torch.Tensor, up: int, before: int, after: int, axis: int) -> torch.Tensor:
    """Along ``axis`` (2 = height, 3 = width): zero insertion, padding ``before``/``after``, filter ``f * up``.

    Run as a strided transposed convolution (it skips the products with the inserted zeros);
    its full output is cropped or padded to what the zero-pad-filter order gives, the part
    cropped at both ends inside the convolution itself.
    """
    taps = f.shape[0]
    low, high = before - taps + 1, after + up - taps  # < 0: crop, > 0: pad
    both = max(0, min(-low, -high))
    shape, stride, crop = ((taps, 1), (up, 1), (both, 0)) if axis == 2 else ((1, taps), (1, up), (0, both))
    x = _depthwise(x, f * up, shape, stride, transposed=True, crop=crop)
    low, high = low + both, high + both
    if low or high:
        x = F.pad(x, [low, high] if axis == 3 else [0, 0, low, high])
    return x


def _upsample(x: torch.Tensor, f: torch.Tensor, up: int, padding: tuple[int, int, int, int]) -> torch.Tensor:
    """Insert ``up - 1`` zeros after every sample, pad by ``padding``, filter with ``f`` times ``up`` per axis."""
    left, right, top, bottom = padding
    x = _upsample_axis(x, f, up, left, right, axis=3)
    return _upsample_axis(x, f, up, top, bottom, axis=2)


def filtered_lrelu(x: torch.Tensor, bias: torch.Tensor, up_filter: torch.Tensor | None,
                   down_filter: torch.Tensor | None, up: int, down: int, padding: tuple[int, int, int, int],
                   gain: float, slope: float, clamp: float | None) -> torch.Tensor:
    """Bias, ``up``x up-sampling, leaky ReLU at the high rate, clamp, ``down``x down-sampling.

    ``padding`` (left, right, top, bottom; negative crops) applies after zero insertion. The
    up-sampling filter has gain ``up`` per axis, the down-sampling filter gain 1; down-sampling
    keeps every ``down``-th filtered sample, starting at the first (a strided convolution).
    """
    x = x + bias.to(x.dtype).reshape(1, -1, 1, 1)
    if up_filter is not None:
        x = _upsample(x, up_filter, up, padding)
    else:
        if up != 1:
            raise ValueError("up-sampling needs an up_filter")
        x = F.pad(x, list(padding))
    # x is a temporary made above: work in place on it (the largest tensors of the network) unless
    # autograd needs the values
    in_place = not (torch.is_grad_enabled() and x.requires_grad)
    if slope != 1:
        x = F.leaky_relu(x, slope, inplace=in_place)
    if gain != 1:
        x = x.mul_(gain) if in_place else x * gain
    if clamp is not None:
        x = x.clamp_(-clamp, clamp) if in_place else x.clamp(-clamp, clamp)
    if down_filter is None:
        return x[:, :, ::down, ::down] if down > 1 else x
    if down_filter.ndim == 2:
        return _depthwise(x, down_filter, tuple(down_filter.shape), (down, down))
    taps = down_filter.shape[0]
    x = _depthwise(x, down_filter, (1, taps), (1, down))
    return _depthwise(x, down_filter, (taps, 1), (down, 1))


# ---------------------------------------------------------------------------------------------
# Layers


class SynthesisInput(nn.Module):
    """Fourier features at ``bandwidth``, rotated and translated per sample by ``affine(w)`` and by
    the user ``transform`` (which holds the inverse of the wanted image transform), then mixed
    by a learned ``weight``."""

    def __init__(self, w_dim: int, channels: int, size: int, sampling_rate: float, bandwidth: float):
        super().__init__()
        self.w_dim, self.channels = w_dim, channels
        self.size = np.broadcast_to(np.asarray(size), [2])
        self.sampling_rate, self.bandwidth = float(sampling_rate), float(bandwidth)
        # Random frequencies inside a disc of radius ``bandwidth``, random phases.
        freqs = torch.randn([channels, 2])
        radii = freqs.norm(dim=1, keepdim=True)
        freqs = freqs / (radii * radii.square().exp().pow(0.25)) * bandwidth
        self.weight = nn.Parameter(torch.randn([channels, channels]))
        self.affine = FullyConnectedLayer(w_dim, 4)
        with torch.no_grad():
            self.affine.weight.zero_()
            self.affine.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0]))  # type: ignore[union-attr]  # has a bias
        self.register_buffer("transform", torch.eye(3))
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", torch.rand([channels]) - 0.5)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        n = w.shape[0]
        t = self.affine(w)
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        rotation = torch.eye(3, device=w.device).repeat(n, 1, 1)
        rotation[:, 0, 0], rotation[:, 0, 1] = t[:, 0], -t[:, 1]
        rotation[:, 1, 0], rotation[:, 1, 1] = t[:, 1], t[:, 0]
        translation = torch.eye(3, device=w.device).repeat(n, 1, 1)
        translation[:, 0, 2], translation[:, 1, 2] = -t[:, 2], -t[:, 3]
        m = rotation @ translation @ self.transform.unsqueeze(0)
        phases = self.phases.unsqueeze(0) + (self.freqs.unsqueeze(0) @ m[:, :2, 2:]).squeeze(2)  # [N, C]
        freqs = self.freqs.unsqueeze(0) @ m[:, :2, :2]  # [N, C, 2]
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)
        width, height = int(self.size[0]), int(self.size[1])
        xs = (torch.arange(width, device=w.device, dtype=torch.float32) + 0.5 - width / 2) / self.sampling_rate
        ys = (torch.arange(height, device=w.device, dtype=torch.float32) + 0.5 - height / 2) / self.sampling_rate
        grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij")[::-1], dim=-1)  # [H, W, 2] as (x, y)
        x = grid.reshape(1, -1, 2) @ freqs.transpose(1, 2)  # [N, H*W, C]
        x = torch.sin((x + phases.unsqueeze(1)) * (2 * math.pi)) * amplitudes.unsqueeze(1)
        x = x @ (self.weight / math.sqrt(self.channels)).t()
        return x.reshape(n, height, width, self.channels).permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        return f"w_dim={self.w_dim}, channels={self.channels}, size={list(self.size)}, " \
               f"sampling_rate={self.sampling_rate:g}, bandwidth={self.bandwidth:g}"


class SynthesisLayer(nn.Module):
    """Modulated convolution, then the filtered leaky ReLU that moves between sampling rates."""

    def __init__(self, w_dim: int, is_torgb: bool, is_critically_sampled: bool, use_fp16: bool,
                 in_channels: int, out_channels: int, in_size: int, out_size: int,
                 in_sampling_rate: float, out_sampling_rate: float, in_cutoff: float, out_cutoff: float,
                 in_half_width: float, out_half_width: float, conv_kernel: int = 3, filter_size: int = 6,
                 lrelu_upsampling: int = 2, use_radial_filters: bool = False, conv_clamp: float | None = 256,
                 magnitude_ema_beta: float = 0.999):
        super().__init__()
        self.w_dim, self.is_torgb, self.is_critically_sampled = w_dim, is_torgb, is_critically_sampled
        self.use_fp16 = use_fp16  # recorded only: this implementation runs float32
        self.in_channels, self.out_channels = in_channels, out_channels
        self.in_size = np.broadcast_to(np.asarray(in_size), [2])
        self.out_size = np.broadcast_to(np.asarray(out_size), [2])
        self.in_sampling_rate, self.out_sampling_rate = in_sampling_rate, out_sampling_rate
        self.tmp_sampling_rate = max(in_sampling_rate, out_sampling_rate) * (1 if is_torgb else lrelu_upsampling)
        self.in_cutoff, self.out_cutoff = in_cutoff, out_cutoff
        self.in_half_width, self.out_half_width = in_half_width, out_half_width
        self.conv_kernel = 1 if is_torgb else conv_kernel
        self.conv_clamp = conv_clamp
        self.magnitude_ema_beta = magnitude_ema_beta

        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, self.conv_kernel, self.conv_kernel]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.register_buffer("magnitude_ema", torch.ones([]))

        self.up_factor = int(np.rint(self.tmp_sampling_rate / in_sampling_rate))
        assert in_sampling_rate * self.up_factor == self.tmp_sampling_rate
        self.up_taps = filter_size * self.up_factor if self.up_factor > 1 and not is_torgb else 1
        self.register_buffer("up_filter", lowpass_filter(self.up_taps, in_cutoff, in_half_width * 2,
                                                         self.tmp_sampling_rate))
        self.down_factor = int(np.rint(self.tmp_sampling_rate / out_sampling_rate))
        assert out_sampling_rate * self.down_factor == self.tmp_sampling_rate
        self.down_taps = filter_size * self.down_factor if self.down_factor > 1 and not is_torgb else 1
        self.down_radial = use_radial_filters and not is_critically_sampled
        self.register_buffer("down_filter", lowpass_filter(self.down_taps, out_cutoff, out_half_width * 2,
                                                           self.tmp_sampling_rate, radial=self.down_radial))
        self.padding = layer_padding(self.in_size, self.out_size, self.conv_kernel, self.up_factor, self.down_factor,
                                     self.up_taps, self.down_taps)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w)
        if self.is_torgb:
            styles = styles / math.sqrt(self.in_channels * self.conv_kernel**2)
        x = modulated_conv(x, self.weight, styles, demodulate=not self.is_torgb,
                           input_gain=self.magnitude_ema.rsqrt())
        return filtered_lrelu(x, self.bias, self.up_filter, self.down_filter, self.up_factor, self.down_factor,
                              self.padding, gain=1.0 if self.is_torgb else math.sqrt(2),
                              slope=1.0 if self.is_torgb else 0.2, clamp=self.conv_clamp)

    def extra_repr(self) -> str:
        return (f"w_dim={self.w_dim}, is_torgb={self.is_torgb}, critically_sampled={self.is_critically_sampled}, "
                f"in={self.in_channels}x{int(self.in_size[0])}@{self.in_sampling_rate:g}, "
                f"out={self.out_channels}x{int(self.out_size[0])}@{self.out_sampling_rate:g}, "
                f"up={self.up_factor}, down={self.down_factor}, padding={list(self.padding)}")


def layer_padding(in_size, out_size, kernel: int, up: int, down: int, up_taps: int,
                  down_taps: int) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) padding after zero insertion so that ``in_size`` maps to ``out_size``."""
    sides = []
    for axis in range(2):
        total = (int(out_size[axis]) - 1) * down + 1 - (int(in_size[axis]) + kernel - 1) * up + up_taps + down_taps - 2
        low = (total + up) // 2
        sides += [low, total - low]
    return sides[0], sides[1], sides[2], sides[3]


def modulated_conv(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool,
                   input_gain: torch.Tensor) -> torch.Tensor:
    """The StyleGAN3 modulated convolution (zero padding ``k - 1``), run unfused.

    With demodulation the weight is first divided by its RMS per output channel and the
    styles by their RMS over the whole batch; ``input_gain`` scales after demodulation.
    """
    n = x.shape[0]
    k = weight.shape[-1]
    if demodulate:
        weight = weight * weight.square().mean(dim=[1, 2, 3], keepdim=True).rsqrt()
        styles = styles * styles.square().mean().rsqrt()
    x = x * (styles * input_gain).to(x.dtype).reshape(n, -1, 1, 1)
    x = F.conv2d(x, weight.to(x.dtype), padding=k - 1)
    if demodulate:
        dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()
        x = x * dcoefs.to(x.dtype).reshape(n, -1, 1, 1)
    return x


# ---------------------------------------------------------------------------------------------
# Networks


def layer_schedule(img_resolution: int, img_channels: int, channel_base: int, channel_max: int, num_layers: int,
                   num_critical: int, first_cutoff: float, first_stopband: float, last_stopband_rel: float,
                   margin_size: int) -> dict[str, np.ndarray]:
    """Per-entry cutoffs, stopbands, sampling rates, half-widths, sizes and channels (float64).

    Entry 0 is the input; layer i reads entry max(i - 1, 0) and writes entry i.
    """
    exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
    cutoffs = first_cutoff * (img_resolution / 2 / first_cutoff) ** exponents
    stopbands = first_stopband * (img_resolution / 2 * last_stopband_rel / first_stopband) ** exponents
    rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
    half_widths = np.maximum(stopbands, rates / 2) - cutoffs
    sizes = rates + margin_size * 2
    sizes[-2:] = img_resolution
    channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
    channels[-1] = img_channels
    return {"cutoffs": cutoffs, "stopbands": stopbands, "rates": rates, "half_widths": half_widths,
            "sizes": sizes, "channels": channels}


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] -> image [N, img_channels, R, R]: input, L0 .. L{num_layers} (ToRGB)."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, channel_base: int = 32768,
                 channel_max: int = 512, num_layers: int = 14, num_critical: int = 2, first_cutoff: float = 2,
                 first_stopband: float = 2**2.1, last_stopband_rel: float = 2**0.3, margin_size: int = 10,
                 output_scale: float = 0.25, num_fp16_res: int = 4, **layer_kwargs: Any):
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.num_layers, self.num_critical, self.margin_size = num_layers, num_critical, margin_size
        self.output_scale = output_scale
        self.num_ws = num_layers + 2
        schedule = layer_schedule(img_resolution, img_channels, channel_base, channel_max, num_layers, num_critical,
                                  first_cutoff, first_stopband, last_stopband_rel, margin_size)
        cutoffs, rates, half_widths = schedule["cutoffs"], schedule["rates"], schedule["half_widths"]
        sizes, channels = schedule["sizes"], schedule["channels"]
        self.input = SynthesisInput(w_dim, channels=int(channels[0]), size=int(sizes[0]), sampling_rate=rates[0],
                                    bandwidth=cutoffs[0])
        self.layer_names = []
        for i in range(num_layers + 1):
            prev = max(i - 1, 0)
            layer = SynthesisLayer(
                w_dim=w_dim, is_torgb=i == num_layers, is_critically_sampled=i >= num_layers - num_critical,
                use_fp16=bool(rates[i] * 2**num_fp16_res > img_resolution),
                in_channels=int(channels[prev]), out_channels=int(channels[i]),
                in_size=int(sizes[prev]), out_size=int(sizes[i]),
                in_sampling_rate=int(rates[prev]), out_sampling_rate=int(rates[i]),
                in_cutoff=cutoffs[prev], out_cutoff=cutoffs[i], in_half_width=half_widths[prev],
                out_half_width=half_widths[i], **layer_kwargs)
            name = f"L{i}_{int(layer.out_size[0])}_{layer.out_channels}"
            setattr(self, name, layer)
            self.layer_names.append(name)

    def forward(self, ws: torch.Tensor, noise_mode: str = "const", force_fp32: bool | None = None,
                **unused: Any) -> torch.Tensor:
        """The image for ``ws``; ``noise_mode`` and ``force_fp32`` are accepted for the official
        call signature (StyleGAN3 has no noise; it always runs float32 here)."""
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {', '.join(NOISE_MODES)}, got {noise_mode!r}")
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"ws must be [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        ws = ws.to(torch.float32).unbind(dim=1)
        x = self.input(ws[0])
        for name, w in zip(self.layer_names, ws[1:]):
            x = getattr(self, name)(x, w)
        if self.output_scale != 1:
            x = x * self.output_scale
        return x.to(torch.float32)


class Generator(nn.Module):
    """The StyleGAN3 generator with the official constructor arguments and call signature.

    Synthesis and layer options (``channel_base``, ``conv_kernel``, ``use_radial_filters``, ...)
    are passed flat, as in the official pickles' ``init_kwargs``.
    """

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, img_resolution: int, img_channels: int,
                 mapping_kwargs: dict | None = None, **synthesis_kwargs: Any):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        mapping_kwargs = dict(mapping_kwargs or {})
        self.init_kwargs = {"z_dim": z_dim, "c_dim": c_dim, "w_dim": w_dim, "img_resolution": img_resolution,
                            "img_channels": img_channels, "mapping_kwargs": mapping_kwargs, **synthesis_kwargs}
        self.synthesis = SynthesisNetwork(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
                                          **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = mapping_network(z_dim, c_dim, w_dim, self.num_ws, **mapping_kwargs)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None, truncation_psi: float = 1,
                truncation_cutoff: int | None = None, **synthesis_kwargs: Any) -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, **synthesis_kwargs)


def mapping_network(z_dim: int, c_dim: int, w_dim: int, num_ws: int, num_layers: int = 2,
                    lr_multiplier: float = 0.01, w_avg_beta: float = 0.998) -> MappingNetwork:
    """The StyleGAN3 mapping network: StyleGAN2's, with every layer ``w_dim`` wide and the label
    embedded to ``w_dim``; its keys (``w_avg``, ``embed``, ``fc{i}``) are the official ones."""
    return MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=num_ws, num_layers=num_layers,
                          embed_features=w_dim, layer_features=w_dim, activation="lrelu",
                          lr_multiplier=lr_multiplier, w_avg_beta=w_avg_beta)


def make_transform(translate: tuple[float, float] = (0.0, 0.0), rotate: float = 0.0) -> np.ndarray:
    """The 3x3 matrix for ``synthesis.input.transform``: the inverse of rotating the image by
    ``rotate`` degrees and translating it by ``translate`` (in image widths), as the official
    generate script sets it."""
    angle = math.radians(rotate)
    forward = np.array([[math.cos(angle), math.sin(angle), translate[0]],
                        [-math.sin(angle), math.cos(angle), translate[1]],
                        [0.0, 0.0, 1.0]])
    return np.linalg.inv(forward)


__all__ = ["Generator", "SynthesisNetwork", "SynthesisLayer", "SynthesisInput", "filtered_lrelu", "layer_padding",
           "layer_schedule", "lowpass_filter", "make_transform", "mapping_network", "modulated_conv"]

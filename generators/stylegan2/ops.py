"""Low-level operations of StyleGAN2: bias + activation, FIR filtering, modulated convolution.

Written from ../shared/STYLEGAN2.md (Karras et al. 2020). The orders of operations follow
the specification's "details that decide parity", so the floats match the official models'.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

ACTIVATIONS = {
    # name: (function, default gain)
    "linear": (lambda x: x, 1.0),
    "relu": (F.relu, math.sqrt(2)),
    "lrelu": (lambda x: F.leaky_relu(x, 0.2), math.sqrt(2)),
    "tanh": (torch.tanh, 1.0),
    "sigmoid": (torch.sigmoid, 1.0),
    "elu": (F.elu, 1.0),
    "selu": (F.selu, 1.0),
    "softplus": (F.softplus, 1.0),
    "swish": (lambda x: torch.sigmoid(x) * x, math.sqrt(2)),
}


def check_activation(name: str) -> None:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}")


def bias_act(x: torch.Tensor, bias: torch.Tensor | None, activation: str = "linear", gain: float | None = None,
             clamp: float | None = None) -> torch.Tensor:
    """``clamp(act(x + bias) * gain)``, the bias broadcast over dimension 1."""
    function, default_gain = ACTIVATIONS[activation]
    gain = default_gain if gain is None else float(gain)
    if bias is not None:
        x = x + bias.reshape([1, -1] + [1] * (x.ndim - 2))
    x = function(x)
    # x is a temporary made above (unless nothing was applied) and autograd does not need it
    in_place = (bias is not None or activation != "linear") and not (torch.is_grad_enabled() and x.requires_grad)
    if gain != 1:
        x = x.mul_(gain) if in_place else x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp_(-clamp, clamp) if in_place else x.clamp(-clamp, clamp)
    return x


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def setup_filter(taps) -> torch.Tensor:
    """The 2-D FIR filter of 1-D ``taps``: their outer product, normalised to sum 1."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    if f.ndim == 1:
        f = f.ger(f)
    return f / f.sum()


def fir_filter(x: torch.Tensor, f: torch.Tensor, up: int = 1, pad: tuple[int, int, int, int] = (0, 0, 0, 0),
               gain: float = 1.0) -> torch.Tensor:
    """Up-sample by zero insertion, zero-pad (left, right, top, bottom), then convolve with ``f``.

    ``f`` is a [fh, fw] filter applied to every channel (true convolution: the filter is flipped).
    """
    n, c, h, w = x.shape
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    x = F.pad(x, list(pad))
    kernel = (f * gain).flip([0, 1]).to(x.dtype)
    kernel = kernel[None, None].repeat(c, 1, 1, 1)
    return F.conv2d(x, kernel, groups=c)


def upsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Image 2x up-sampling (the RGB skip path): zeros inserted, pad 2 before and 1 after, gain 4."""
    fw = f.shape[-1]
    before, after = (fw + 1) // 2, (fw - 2) // 2
    return fir_filter(x, f, up=2, pad=(before, after, before, after), gain=4.0)


def conv2d_up2(x: torch.Tensor, weight: torch.Tensor, f: torch.Tensor, padding: int, groups: int = 1) -> torch.Tensor:
    """Convolution with 2x up-sampling: a stride-2 transposed convolution, then the FIR low-pass.

    ``weight`` is [groups * out, in, k, k], used transposed and not flipped. The transposed
    convolution turns H into 2H + k - 2; the filter (gain 4), padded by the layer's ``padding``
    plus what its own length needs, brings it to 2H.
    """
    k = weight.shape[-1]
    out_channels = weight.shape[0] // groups
    transposed = weight.reshape(groups, out_channels, -1, k, k).transpose(1, 2).reshape(-1, out_channels, k, k)
    x = F.conv_transpose2d(x, transposed, stride=2, groups=groups)
    fw = f.shape[-1]
    before = padding + (fw + 1) // 2 - (k - 1)
    after = padding + (fw - 2) // 2 - (k - 2)
    return fir_filter(x, f, pad=(before, after, before, after), gain=4.0)


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, *, noise: torch.Tensor | None = None,
                     up: int = 1, padding: int = 0, resample_filter: torch.Tensor | None = None,
                     demodulate: bool = True, fused: bool = False) -> torch.Tensor:
    """Style-modulated convolution, optionally demodulated, with noise added after demodulation.

    ``fused`` runs one grouped convolution with per-sample weights; otherwise the activations
    are scaled by the styles, convolved with the shared weight and scaled by the demodulation
    coefficients (equal maths, far faster for batches on a CPU).
    """
    n = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape
    if x.dtype == torch.float16 and demodulate:  # keep float16 from overflowing; demodulation cancels it
        weight = weight * (1 / math.sqrt(in_channels * kh * kw) / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)
    dcoefs = None
    if not fused:
        if demodulate:
            # sum over (in, kh, kw) of (weight * style)^2 as one matmul: sum_i style_i^2 * |weight_oi|^2
            dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()
        x = x * styles.to(x.dtype).reshape(n, -1, 1, 1)
        x = _conv(x, weight.to(x.dtype), up, padding, resample_filter)
        if demodulate and noise is not None:
            return torch.addcmul(noise.to(x.dtype), x, dcoefs.to(x.dtype).reshape(n, -1, 1, 1))  # type: ignore[union-attr]
        if demodulate:
            return x * dcoefs.to(x.dtype).reshape(n, -1, 1, 1)  # type: ignore[union-attr]  # set when demodulate
        if noise is not None:
            return x + noise.to(x.dtype)
        return x
    per_sample = weight.unsqueeze(0) * styles.reshape(n, 1, -1, 1, 1)
    if demodulate:
        dcoefs = (per_sample.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()
        per_sample = per_sample * dcoefs.reshape(n, -1, 1, 1, 1)
    grouped = per_sample.reshape(n * out_channels, in_channels, kh, kw).to(x.dtype)
    x = x.reshape(1, -1, *x.shape[2:])
    x = _conv(x, grouped, up, padding, resample_filter, groups=n)
    x = x.reshape(n, -1, *x.shape[2:])
    if noise is not None:
        x = x + noise.to(x.dtype)
    return x


def _conv(x: torch.Tensor, weight: torch.Tensor, up: int, padding: int, f: torch.Tensor | None, groups: int = 1) -> torch.Tensor:
    if up == 1:
        return F.conv2d(x, weight, padding=padding, groups=groups)
    return conv2d_up2(x, weight, f, padding, groups)

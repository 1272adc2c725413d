"""Style, content and regularisation losses as pure tensor functions.

Feature maps are ``(N, C, H, W)`` (or already flattened ``(N, C, M)``); every style distance
returns one value per batch item, shape ``(N,)``. Notation follows REFERENCE.md: the M columns
of a flattened map are the samples x_i ∈ ℝ^C of the image's feature distribution.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def flatten(features: Tensor) -> Tensor:
    """(N, C, H, W) → (N, C, M); (N, C, M) passes through."""
    return features.flatten(2) if features.dim() == 4 else features


def gram_matrix(features: Tensor) -> Tensor:
    """Gram matrix normalised by the number of positions: G/M = F Fᵀ / M, shape (N, C, C)."""
    f = flatten(features)  # (N, C, M)
    return f @ f.transpose(1, 2) / f.shape[-1]


def channel_mean(features: Tensor) -> Tensor:
    return flatten(features).mean(dim=-1)  # (N, C)


def channel_std(features: Tensor, *, unbiased: bool = False, eps: float = 0.0) -> Tensor:
    """Per-channel standard deviation, sqrt(var + eps); biased by default (REFERENCE.md)."""
    return (flatten(features).var(dim=-1, unbiased=unbiased) + eps).sqrt()  # (N, C)


def _sq_norm(x: Tensor) -> Tensor:
    """Squared Frobenius norm over all but the batch dimension."""
    return x.flatten(1).pow(2).sum(dim=1)


# --- Gram / polynomial MMD ------------------------------------------------------------------


def gram_distance(gram_x: Tensor, gram_y: Tensor) -> Tensor:
    """Gatys' E = 1/(4C²) · ‖G/M − A/M'‖²_F, from position-normalised Grams."""
    channels = gram_x.shape[-1]
    return _sq_norm(gram_x - gram_y) / (4 * channels**2)


def gram_loss(x: Tensor, y: Tensor) -> Tensor:
    """Gatys et al. 2016: E = 1/(4 C² M²) Σ_ij (G_ij − A_ij)², with G/M for unequal sizes."""
    return gram_distance(gram_matrix(x), gram_matrix(y))


def mmd_poly2_distance(gram_x: Tensor, mean_x: Tensor, gram_y: Tensor, mean_y: Tensor, c: float) -> Tensor:
    """MMD² for k = (xᵀy + c)² from sufficient statistics: ‖G/M − A/M'‖² + 2c‖μx − μy‖²."""
    return _sq_norm(gram_x - gram_y) + 2 * c * _sq_norm(mean_x - mean_y)


def mmd_poly(x: Tensor, y: Tensor, degree: int = 2, c: float = 0.0) -> Tensor:
    """MMD² (biased V-statistic) for the polynomial kernel k = (xᵀy + c)^degree.

    Degree 2 costs O(M·C²) and never forms the M×M kernel matrix; other degrees fall back to
    the exact quadratic-time estimator, evaluated in blocks.
    """
    if degree == 2:
        return mmd_poly2_distance(gram_matrix(x), channel_mean(x), gram_matrix(y), channel_mean(y), c)
    return mmd_exact(x, y, lambda a, b: (a @ b + c) ** degree)


def mmd_linear(x: Tensor, y: Tensor) -> Tensor:
    """MMD² for the linear kernel k = xᵀy, which is ‖μx − μy‖²."""
    return _sq_norm(channel_mean(x) - channel_mean(y))


# --- Exact (quadratic-time) MMD, for references and small inputs -----------------------------


def _kernel_mean(a: Tensor, b: Tensor, kernel, block: int, skip_diagonal: bool = False) -> Tensor:
    """mean_ij k(a_i, b_j) for a: (N, C, M), b: (N, C, M'), blockwise over a's positions.

    With ``skip_diagonal`` (a is b) the i = j terms are left out: the U-statistic mean.
    """
    total = a.new_zeros(a.shape[0])
    at = a.transpose(1, 2)  # (N, M, C)
    for start in range(0, at.shape[1], block):
        values = kernel(at[:, start : start + block], b)  # (N, block, M')
        total = total + values.sum(dim=(1, 2))
        if skip_diagonal:
            total = total - torch.diagonal(values, offset=start, dim1=1, dim2=2).sum(-1)
    pairs = a.shape[-1] * (b.shape[-1] - 1 if skip_diagonal else b.shape[-1])
    return total / pairs


def mmd_exact(x: Tensor, y: Tensor, kernel, block: int = 1024, unbiased: bool = False) -> Tensor:
    """Quadratic-time MMD²: mean k(x,x') + mean k(y,y') − 2 mean k(x,y).

    ``kernel(A, B)`` gets A: (N, m, C) and B: (N, C, M') and returns the (N, m, M') block.
    The biased V-statistic by default; ``unbiased`` leaves out the i = j terms (U-statistic).
    """
    x, y = flatten(x), flatten(y)
    return (
        _kernel_mean(x, x, kernel, block, skip_diagonal=unbiased)
        + _kernel_mean(y, y, kernel, block, skip_diagonal=unbiased)
        - 2 * _kernel_mean(x, y, kernel, block)
    )


def rbf_kernel(sigma: float):
    """k(a, b) = exp(−‖a − b‖² / (2σ²)) in the block form ``mmd_exact`` expects."""

    def kernel(a: Tensor, b: Tensor) -> Tensor:
        sq = a.pow(2).sum(-1, keepdim=True) - 2 * a @ b + b.pow(2).sum(1, keepdim=True)
        return torch.exp(-sq.clamp_min(0) / (2 * sigma**2))

    return kernel


def mmd_rbf_exact(x: Tensor, y: Tensor, sigma: float, unbiased: bool = False) -> Tensor:
    """The quadratic-time Gaussian-kernel MMD² (V- or U-statistic); a reference only."""
    return mmd_exact(x, y, rbf_kernel(sigma), unbiased=unbiased)


# --- Gaussian-kernel MMD in linear time ------------------------------------------------------


RBF_RELATIVE_FLOOR = 1e-4  # 2σ² ≥ this × the mean squared norm of y's positions
RBF_ABSOLUTE_FLOOR = 1e-12  # only for all-zero features


def rbf_bandwidth(y: Tensor, generator: torch.Generator | None = None, pairs: int = 4096) -> float:
    """σ with 2σ² = mean squared distance of randomly sampled pairs of y's positions.

    Follows Neural-Style-MMD's heuristic: a typical pair then has kernel value e^{-1}. For a
    (nearly) flat style the pairs are (nearly) equal, which would make σ arbitrarily small and the
    kernel a Dirac; 2σ² is therefore floored at ``RBF_RELATIVE_FLOOR`` times the mean squared
    norm of the positions, so σ keeps the features' scale (and scales with them).
    """
    f = flatten(y)[0]  # (C, M)
    m = f.shape[-1]
    i = torch.randint(m, (pairs,), generator=generator).to(f.device)
    j = torch.randint(m, (pairs,), generator=generator).to(f.device)
    mean_sq = (f[:, i] - f[:, j]).pow(2).sum(0).mean().item()
    scale = f.pow(2).sum(0).mean().item()  # mean ‖y_i‖²
    return math.sqrt(max(mean_sq, RBF_RELATIVE_FLOOR * scale, RBF_ABSOLUTE_FLOOR) / 2)


def random_fourier_frequencies(channels: int, num_features: int, sigma: float,
                               generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """W ~ N(0, σ⁻²I) of shape (D, C) and phases b ~ U[0, 2π) of shape (D,) (Rahimi & Recht)."""
    w = torch.randn(num_features, channels, generator=generator) / sigma
    b = torch.rand(num_features, generator=generator) * (2 * math.pi)
    return w, b


RFF_CHUNK = 16_384  # positions per block: the projection of a block is D × RFF_CHUNK floats


def _projection(w: Tensor, b: Tensor, block: Tensor) -> Tensor:
    return torch.matmul(w, block) + b.view(-1, 1)  # (N, D, m) = (D, C) @ (N, C, m) + (D, 1)


class _CosineMean(torch.autograd.Function):
    """Σ_i cos(W x_i + b) over positions, in blocks of positions, with a hand-written backward.

    Autograd would keep the whole (N, D, M) projection for the backward pass (at relu1_1 of a
    1024² image, D = 256: a gigabyte per tensor); here each block's projection is recomputed
    in the backward pass instead, so memory stays O(N·D·chunk). d/dx_i = −Wᵀ (g ⊙ sin(W x_i + b)).
    """

    @staticmethod
    def forward(ctx, f: Tensor, w: Tensor, b: Tensor, chunk: int) -> Tensor:
        total = f.new_zeros(f.shape[0], w.shape[0])  # (N, D)
        for start in range(0, f.shape[-1], chunk):
            total += torch.cos(_projection(w, b, f[..., start:start + chunk])).sum(dim=-1)
        ctx.save_for_backward(f, w, b)
        ctx.chunk = chunk
        return total

    @staticmethod
    def backward(ctx, grad: Tensor):
        f, w, b = ctx.saved_tensors
        grad_f = torch.empty_like(f)  # (N, C, M)
        for start in range(0, f.shape[-1], ctx.chunk):
            block = slice(start, start + ctx.chunk)
            sines = torch.sin(_projection(w, b, f[..., block]))  # (N, D, m)
            grad_f[..., block] = -torch.matmul(w.t(), sines * grad.unsqueeze(-1))  # (N, C, m)
        return grad_f, None, None, None


def rff_mean_embedding(features: Tensor, w: Tensor, b: Tensor, chunk: int = RFF_CHUNK) -> Tensor:
    """mean_i φ(x_i) with φ(x) = sqrt(2/D)·cos(Wx + b); shape (N, D). Cost O(M·C·D).

    Evaluated over blocks of ``chunk`` positions, so memory is O(N·D·chunk) in both passes;
    the value does not depend on ``chunk`` beyond float rounding. W and b are constants (no
    gradient flows to them).
    """
    f = flatten(features)  # (N, C, M)
    total = _CosineMean.apply(f, w.to(f), b.to(f), int(chunk))  # (N, D)
    return total * (math.sqrt(2.0 / w.shape[0]) / f.shape[-1])


def mmd_rbf_rff(x: Tensor, y: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """‖mean φ(x) − mean φ(y)‖²: an unbiased estimate (over W, b) of the biased MMD² V-statistic
    for the Gaussian kernel whose bandwidth W was drawn with. Deterministic for fixed W, b."""
    return _sq_norm(rff_mean_embedding(x, w, b) - rff_mean_embedding(y, w, b))


def mmd_rbf_linear(x: Tensor, y: Tensor, sigma: float, generator: torch.Generator | None = None) -> Tensor:
    """Gretton et al. 2012's unbiased linear-time MMD² estimator for the Gaussian kernel.

    Both sample sets are randomly permuted (the larger one subsampled to the smaller's size)
    and consecutive samples paired: mean over pairs of
    h = k(x₁,x₂) + k(y₁,y₂) − k(x₁,y₂) − k(x₂,y₁). Unbiased for the U-statistic MMD².
    """
    fx, fy = flatten(x), flatten(y)
    n = min(fx.shape[-1], fy.shape[-1]) // 2 * 2
    px = torch.randperm(fx.shape[-1], generator=generator)[:n].to(fx.device)
    py = torch.randperm(fy.shape[-1], generator=generator)[:n].to(fy.device)
    x1, x2 = fx[..., px[0::2]], fx[..., px[1::2]]  # (N, C, n/2)
    y1, y2 = fy[..., py[0::2]], fy[..., py[1::2]]

    def k(a: Tensor, b: Tensor) -> Tensor:
        return torch.exp(-(a - b).pow(2).sum(1) / (2 * sigma**2))  # (N, n/2)

    return (k(x1, x2) + k(y1, y2) - k(x1, y2) - k(x2, y1)).mean(dim=-1)


# --- Batch-norm statistics -------------------------------------------------------------------


def bn_stats_distance(mean_x: Tensor, std_x: Tensor, mean_y: Tensor, std_y: Tensor) -> Tensor:
    """(1/C)·Σ_c [(μx − μy)² + (σx − σy)²]."""
    return ((mean_x - mean_y).pow(2) + (std_x - std_y).pow(2)).mean(dim=-1)


BN_STATS_EPS = 1e-8  # σ = √(var + ε): a channel without variance gets a finite gradient, not 0·∞ = NaN


def bn_stats_loss(x: Tensor, y: Tensor) -> Tensor:
    """Li et al. 2017's BN-statistic matching with biased standard deviations √(var + ε)."""
    return bn_stats_distance(channel_mean(x), channel_std(x, eps=BN_STATS_EPS),
                             channel_mean(y), channel_std(y, eps=BN_STATS_EPS))


# --- Content and total variation -------------------------------------------------------------


def content_loss(features: Tensor, target: Tensor) -> Tensor:
    """Gatys' content loss ½·Σ (F − P)², per batch item."""
    return 0.5 * _sq_norm(features - target)


def tv_loss(image: Tensor, power: float = 2.0) -> Tensor:
    """Σ |neighbour differences|^power over both axes, per batch item."""
    dh = (image[..., 1:, :] - image[..., :-1, :]).abs().pow(power)
    dw = (image[..., :, 1:] - image[..., :, :-1]).abs().pow(power)
    return dh.flatten(1).sum(1) + dw.flatten(1).sum(1)
